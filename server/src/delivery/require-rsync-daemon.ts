import { runCommand } from "./run-command.js";

/** The rsync daemon scripts/ci/start-rsyncd.sh starts, and its writable module. */
export const TEST_RSYNC_DAEMON = "rsync://127.0.0.1:8873";
export const TEST_RSYNC_MODULE = `${TEST_RSYNC_DAEMON}/mottainai`;

/**
 * Whether the test rsync daemon answers and lists the module `mottainai`; false (so that a
 * developer's run skips) when it does not. With `ci` (the test passes `process.env.CI`) that
 * throws instead: CI must run these tests (DESIGN §8).
 */
export async function requireRsyncDaemon(ci: boolean): Promise<boolean> {
  let problem: string | undefined;
  try {
    const listing = await runCommand("rsync", ["--contimeout=5", `${TEST_RSYNC_DAEMON}/`], { timeoutMs: 10_000 });
    if (!/^mottainai\b/m.test(listing)) problem = `${TEST_RSYNC_DAEMON}/ does not list the module mottainai`;
  } catch (err) {
    problem = `no rsync daemon answers on ${TEST_RSYNC_DAEMON} (${(err as Error).message})`;
  }
  if (problem === undefined) return true;
  if (ci) throw new Error(`rsync daemon tests cannot run in CI: ${problem} (run scripts/ci/start-rsyncd.sh)`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "rsync daemon", `${problem} (run scripts/ci/start-rsyncd.sh)`);
  return false;
}
