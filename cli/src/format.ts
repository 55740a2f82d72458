import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { NodeState, Role, TaskResult, TaskStatus } from "@mottainai/proto";

// Pure formatting of protocol values for humans. Words are the original Mottainai's lower-case
// ones, so that scripts written for it keep matching.

/** Shown for an absent value (an unset time, an empty field) in tables and `key: value` views. */
export const NONE = "-";

const taskStatusWords: Record<TaskStatus, string> = {
  [TaskStatus.UNSPECIFIED]: "unknown",
  [TaskStatus.WAITING]: "waiting",
  [TaskStatus.SETUP]: "setup",
  [TaskStatus.RUNNING]: "running",
  [TaskStatus.DONE]: "done",
  [TaskStatus.STOP]: "stop",
  [TaskStatus.STOPPED]: "stopped",
};

const taskResultWords: Record<TaskResult, string> = {
  [TaskResult.UNSPECIFIED]: "none",
  [TaskResult.SUCCESS]: "success",
  [TaskResult.FAILED]: "failed",
  [TaskResult.ERROR]: "error",
  [TaskResult.SKIPPED]: "skipped",
};

const nodeStateWords: Record<NodeState, string> = {
  [NodeState.UNSPECIFIED]: "unknown",
  [NodeState.ONLINE]: "online",
  [NodeState.OFFLINE]: "offline",
  [NodeState.DRAINING]: "draining",
};

const roleWords: Record<Role, string> = {
  [Role.UNSPECIFIED]: "none",
  [Role.USER]: "user",
  [Role.MANAGER]: "manager",
  [Role.ADMIN]: "admin",
};

/** Words accepted by `task list --status`, in life-cycle order. */
export const TASK_STATUS_WORDS: readonly string[] = Object.values(TaskStatus)
  .filter((value): value is TaskStatus => typeof value === "number" && value !== TaskStatus.UNSPECIFIED)
  .map((status) => taskStatusWords[status]);

/**
 * A task status as the original's word: waiting, setup, running, done, stop, stopped;
 * "unknown" for UNSPECIFIED, the number for a value newer than this CLI.
 */
export function taskStatusWord(status: TaskStatus): string {
  return taskStatusWords[status] ?? String(status);
}

/** A task result as the original's word: none (UNSPECIFIED), success, failed, error; skipped (pipeline members). */
export function taskResultWord(result: TaskResult): string {
  return taskResultWords[result] ?? String(result);
}

/** A node state as a word: online, offline, draining ("unknown" for UNSPECIFIED). */
export function nodeStateWord(state: NodeState): string {
  return nodeStateWords[state] ?? String(state);
}

/** A user role as a word: user, manager, admin ("none" for UNSPECIFIED). */
export function roleWord(role: Role): string {
  return roleWords[role] ?? String(role);
}

/** The task status for one of {@link TASK_STATUS_WORDS}, or undefined for any other word. */
export function parseTaskStatus(word: string): TaskStatus | undefined {
  const entry = Object.entries(taskStatusWords).find(
    ([status, candidate]) => candidate === word && Number(status) !== TaskStatus.UNSPECIFIED,
  );
  return entry === undefined ? undefined : (Number(entry[0]) as TaskStatus);
}

/**
 * A timestamp as ISO 8601 UTC with second precision (`2025-01-02T03:04:05Z`); {@link NONE}
 * when unset. Sub-second digits are dropped: tables stay narrow and `--json` has the exact value.
 */
export function formatTimestamp(timestamp: Timestamp | undefined): string {
  if (timestamp === undefined) {
    return NONE;
  }
  return timestampDate(timestamp)
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z");
}

/** `value`, or {@link NONE} when it is empty or undefined. */
export function orNone(value: string | number | bigint | undefined): string {
  return value === undefined || value === "" ? NONE : String(value);
}

/**
 * The one-line message for an error that ended a command, without the `mottainai:` prefix.
 * A ConnectError becomes `<code>: <raw message>` with the code in lower snake words
 * (`unauthenticated`, `not_found`, `invalid_argument`); any other error is its message (a
 * SpecError's message is already complete). Only the first line of a multi-line message is kept.
 */
export function formatErrorMessage(error: unknown): string {
  let message: string;
  if (error instanceof ConnectError) {
    message = `${codeToString(error.code)}: ${error.rawMessage}`;
  } else if (error instanceof Error) {
    message = error.message;
  } else {
    message = String(error);
  }
  return message.split("\n", 1)[0]!.trimEnd();
}

/** "1.5 MiB" style size for progress bars and tables. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}
