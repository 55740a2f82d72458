import { TaskResult, TaskStatus } from "@mottainai/proto";

/** "running" for TaskStatus.RUNNING: the enum's name in lower case. */
export const statusName = (s: TaskStatus): string => (TaskStatus[s] ?? "unknown").toLowerCase();
export const resultName = (r: TaskResult): string => (TaskResult[r] ?? "unknown").toLowerCase();
export const when = (t?: { seconds: bigint; nanos: number }): string =>
  t ? new Date(Number(t.seconds) * 1000 + t.nanos / 1e6).toISOString().replace("T", " ").slice(0, 19) : "";
export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
