import type { Client } from "@connectrpc/connect";
import { type Task, TaskResult, TaskService, TaskStatus } from "@mottainai/proto";
import { ExitCode } from "./exit-code.js";
import { formatErrorMessage, taskResultWord, taskStatusWord } from "./format.js";
import type { Output } from "./output.js";
import { createPrefixedLines } from "./prefixed-lines.js";

/** Statuses after which a task changes no more (unless restarted). */
const finished: readonly TaskStatus[] = [TaskStatus.DONE, TaskStatus.STOPPED];

/** Options of {@link monitorTasks}. */
export interface MonitorTasksOptions {
  client: Client<typeof TaskService>;
  /** Logs go to its stdout, one outcome line per task to its stderr. */
  output: Pick<Output, "raw" | "note">;
  /** Tasks to wait for, in the order their outcome lines are written when they end together. */
  ids: readonly string[];
  /** Start every task's log at this byte offset (default 0: the whole log). */
  offset?: bigint;
  /**
   * Prefix every log line with `ID | ` so that interleaved logs stay readable; default true when
   * more than one task is monitored. Without a prefix the log bytes are written unchanged.
   */
  prefixLines?: boolean;
  /** When aborted (Ctrl-C) the streams are cancelled and monitorTasks rejects with that error. */
  signal?: AbortSignal;
}

/** How one monitored task ended. */
export interface MonitoredTask {
  id: string;
  /** The task as it was read after its log ended; undefined when it could not be read. */
  task?: Task;
  /** Why the task could not be followed or read (e.g. `not_found: task X not found`); "" otherwise. */
  error: string;
  /** Whether it ended done with result success. */
  succeeded: boolean;
}

/** What {@link monitorTasks} resolves to. */
export interface MonitorResult {
  tasks: MonitoredTask[];
  /** ExitCode.ok when every task succeeded, ExitCode.error otherwise. */
  exitCode: ExitCode;
}

/**
 * Waits for every task of `ids` to end (done or stopped), streaming each one's log as it is
 * written (`FollowTaskLog` with follow, so no polling), and writes one outcome line per task to
 * stderr when it ends: `task ID: done/success`, with ` (exit code N)` for a non-zero exit and
 * `: ERROR` when the task records an error; a task that cannot be followed (unknown id, no
 * right to read it) gets `task ID: <error>` and counts as failed, and the others are still
 * followed. A task restarted while monitored is followed into its next attempt. Resolves once
 * all ended, with exit code 0 only if every one ended done/success (the original's
 * `task monitor` and `task create --monitor` contract). Rejects only when `signal` aborts (with
 * the cancelled RPC's error, which exitCodeFor maps to 130); any other error, also one writing
 * the log, ends that task's monitoring as a failure. Used by `task monitor` and by
 * `task create --monitor`.
 */
export async function monitorTasks(options: MonitorTasksOptions): Promise<MonitorResult> {
  const ids = [...new Set(options.ids)];
  const prefix = options.prefixLines ?? ids.length > 1;
  const tasks = await Promise.all(ids.map((id) => monitorOne(options, id, prefix)));
  const exitCode = tasks.every((t) => t.succeeded) ? ExitCode.ok : ExitCode.error;
  return { tasks, exitCode };
}

async function monitorOne(options: MonitorTasksOptions, id: string, prefix: boolean): Promise<MonitoredTask> {
  const { client, output } = options;
  const log = prefix
    ? createPrefixedLines((b) => output.raw(b), `${id} | `)
    : { write: (b: Uint8Array) => output.raw(b), end: async () => {} };
  let offset = options.offset ?? 0n;
  let outcome: MonitoredTask;
  try {
    for (;;) {
      for await (const chunk of client.followTaskLog({ id, offset, follow: true })) {
        await log.write(chunk.data);
        offset = chunk.offset + BigInt(chunk.data.byteLength);
      }
      const { task } = await client.getTask({ id });
      if (task === undefined) throw new Error(`the server returned no task ${id}`);
      if (finished.includes(task.status)) {
        const succeeded = task.status === TaskStatus.DONE && task.result === TaskResult.SUCCESS;
        outcome = { id, task, error: "", succeeded };
        break;
      }
    }
  } catch (error) {
    if (options.signal?.aborted) throw error;
    outcome = { id, error: formatErrorMessage(error), succeeded: false };
  }
  await log.end();
  output.note(outcomeLine(outcome));
  return outcome;
}

/** The stderr line {@link monitorTasks} writes when a task ended. */
export function outcomeLine(t: MonitoredTask): string {
  if (t.task === undefined) return `task ${t.id}: ${t.error}`;
  const { task } = t;
  let line = `task ${t.id}: ${taskStatusWord(task.status)}/${taskResultWord(task.result)}`;
  if (task.exitCode !== undefined && task.exitCode !== 0) line += ` (exit code ${task.exitCode})`;
  if (task.error !== "") line += `: ${task.error}`;
  return line;
}
