import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Name suffix of a process group record: `<workspace>.pgid`, beside the workspace in the work directory. */
export const PROCESS_GROUP_RECORD_SUFFIX = ".pgid";

/** Where an attempt's process group record lives, given the attempt's workspace directory. */
export function processGroupRecordFile(workspace: string): string {
  return `${workspace}${PROCESS_GROUP_RECORD_SUFFIX}`;
}

/** A process group that ran an attempt, and the boot it ran in. */
export interface ProcessGroupRecord {
  pgid: number;
  /** The kernel's boot id when the group was recorded; "" when the system has none. */
  bootId: string;
}

const BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id";

async function currentBootId(): Promise<string> {
  try {
    return (await readFile(BOOT_ID_FILE, "utf8")).trim();
  } catch {
    return "";
  }
}

/**
 * Writes the record of process group `pgid` to `file` (one line: `<pgid> <boot id>`). Whoever
 * starts a detached process group for an attempt writes it once the group exists and removes
 * it once the group is gone, so that reapOrphans can kill the group if the agent dies between.
 */
export async function writeProcessGroupRecord(file: string, pgid: number): Promise<void> {
  await writeFile(file, `${pgid} ${await currentBootId()}\n`, { mode: 0o600 });
}

/** Reads a record written by writeProcessGroupRecord; undefined when it is missing or malformed. */
export async function readProcessGroupRecord(file: string): Promise<ProcessGroupRecord | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  const match = /^(\d+) ?(\S*)\n?$/.exec(text);
  if (!match) return undefined;
  return { pgid: Number(match[1]), bootId: match[2] ?? "" };
}

/** Whether process group `pgid` still has a process; a group this user may not signal counts as gone. */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Options of reapOrphans. */
export interface ReapOrphansOptions {
  /**
   * How long to wait for a killed group to disappear before removing its record anyway.
   * The wait ends early once the group is gone; it runs out only when dead members are not
   * reaped (a pid 1 that does not wait for orphans). Default 2000 ms.
   */
  settleMs?: number;
}

/**
 * Kills what a previous agent left running (DESIGN §6): for every process group record
 * (`*.pgid`, see writeProcessGroupRecord) directly in `workDir`, sends SIGKILL to the recorded
 * group if it still exists and was recorded in this boot, waits for it to disappear (up to
 * `settleMs`), then removes the record, also when the group was already gone or the record
 * is malformed. Never signals process group 0 or 1, nor the group this process leads.
 * Call it before anything else uses `workDir`, at agent start: it assumes no attempt of this
 * agent runs. A group id reused by an unrelated group within the same boot would be killed;
 * records are removed as soon as their group ends, which keeps that window short.
 * Resolves with the ids of the groups it killed; a missing `workDir` means none.
 */
export async function reapOrphans(workDir: string, options: ReapOrphansOptions = {}): Promise<number[]> {
  const settleMs = options.settleMs ?? 2000;
  let names: string[];
  try {
    names = await readdir(workDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const bootId = await currentBootId();
  const killed: number[] = [];
  for (const name of names.filter((n) => n.endsWith(PROCESS_GROUP_RECORD_SUFFIX))) {
    const file = join(workDir, name);
    const record = await readProcessGroupRecord(file);
    const ours = record !== undefined && record.pgid > 1 && record.pgid !== process.pid && record.bootId === bootId;
    if (ours && groupExists(record.pgid)) {
      try {
        process.kill(-record.pgid, "SIGKILL");
        killed.push(record.pgid);
      } catch {
        // Gone in between.
      }
      for (const deadline = Date.now() + settleMs; groupExists(record.pgid) && Date.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    await rm(file, { force: true });
  }
  return killed;
}
