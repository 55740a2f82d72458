/**
 * Cleanups of everything the benchmarks start (processes, temporary directories), so that an
 * error or Ctrl-C never leaves a server or a fleet of simulated agents behind. Each resource
 * registers its cleanup when it is created and runs it itself when it ends normally.
 */
const pending = new Set<() => Promise<void>>();

/**
 * Registers fn and returns a function that runs it once (later calls and cleanupAll() do
 * nothing more) and resolves when it is done.
 */
export function deferCleanup(fn: () => Promise<void> | void): () => Promise<void> {
  let running: Promise<void> | undefined;
  const once = async (): Promise<void> => {
    pending.delete(once);
    running ??= Promise.resolve().then(fn);
    return running;
  };
  pending.add(once);
  return once;
}

/** Runs every cleanup still registered, newest first; never rejects. */
export async function cleanupAll(): Promise<void> {
  for (const fn of [...pending].reverse()) await fn().catch(() => undefined);
}
