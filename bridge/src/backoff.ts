/** An exponential backoff: initialMs doubling up to maxMs. */
export interface BackoffOptions {
  /** First delay. */
  initialMs: number;
  /** Longest delay. */
  maxMs: number;
}

/**
 * The delay before retry number `attempt` (1 for the first retry): exponential with "equal
 * jitter" (between half and all of the exponential delay), so that many bridges reconnecting
 * to a restarted server do not all come back at the same instant.
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const exp = Math.min(o.maxMs, o.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}

/** Resolves after ms, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
