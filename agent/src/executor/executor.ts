import type { TaskSpec } from "@mottainai/proto";
import type { Logger } from "pino";

/** What an executor is given to run one attempt of one task. */
export interface ExecutorInput {
  /** Task id, used for the workspace name and in log context. */
  taskId: string;
  /** Attempt number (1 for the first run). */
  attempt: number;
  /** The task as the server assigned it (TaskAssignment.spec). */
  spec: TaskSpec;
  /** The MOTTAINAI_* variables from the assignment; the task's own `environment` entries override them. */
  environment: Readonly<Record<string, string>>;
  /** Directory under which the executor may create its per-attempt workspace, e.g. `<state-dir>/work`. */
  workspaceRoot: string;
  /**
   * Receives the task's output (stdout and stderr as one stream, plus what the executor itself
   * prints during setup, such as a checkout) in exact order. Called synchronously from I/O
   * callbacks; must not throw. Never called after wait() resolved.
   */
  onOutput: (chunk: Buffer) => void;
  /** Logger carrying the task id and attempt. */
  logger: Logger;
  /**
   * Fills the task's input directories before the script starts: `root_task` artefacts and
   * `namespace` contents into `artefactDir`, `storage` contents into `storageDir` (both
   * absolute, already created). Called by prepare() at most once, after the workspace exists;
   * rejects with a message naming the input that failed. Absent: the task has no inputs.
   */
  stageInputs?: (dirs: InputDirectories) => Promise<void>;
}

/** Where stageInputs() writes the task's inputs. */
export interface InputDirectories {
  /** The workspace's `artefact_path`. */
  artefactDir: string;
  /** The workspace's `storage_path`. */
  storageDir: string;
}

/** How the script ended. */
export interface ExecutorResult {
  /** The script's exit code, or null when it did not exit by itself (killed, never started). */
  exitCode: number | null;
  /** Signal that ended the script, e.g. "SIGTERM", when it was killed. */
  signal?: string;
  /** Why the executor itself failed, when it did (not the script's failure). */
  error?: string;
}

/** What collect() found after the run. */
export interface ExecutorCollection {
  /** Absolute directory holding the artefacts the task wrote, for the uploader; absent if none. */
  artefactDir?: string;
}

/**
 * Runs one attempt of one task (DESIGN §6). One instance per attempt; not reusable.
 *
 * Lifecycle, in this order, each awaited before the next:
 *   1. `prepare()`  — create the workspace, check out sources, pull images. Output of these
 *                     steps may already go to `onOutput`. Rejects with a message naming the bad
 *                     field (e.g. `directory: …`) when the task cannot be set up.
 *   2. `start()`    — start the script; resolves once it runs (rejects if it could not start).
 *   3. output       — streamed through `ExecutorInput.onOutput` while the script runs.
 *   4. `wait()`     — resolves when the script has ended and every output byte was delivered.
 *                     Never rejects: executor failures come back in `ExecutorResult.error`.
 *                     Called only after a successful start().
 *   5. `collect()`  — gather what the run produced (artefacts) before the workspace goes away.
 *   6. `destroy()`  — release everything (processes, workspace, containers). Always called,
 *                     also after a failed prepare/start or a cancel; idempotent; safe at any
 *                     point of the lifecycle.
 *
 * `cancel(graceMs)` may be called at any time and more than once, from any state: before
 * start it makes start() a no-op (the agent then skips wait()); while running it asks the
 * script to stop (SIGTERM or equivalent) and forces it (SIGKILL) after `graceMs`; after the end
 * it does nothing. A cancelled run resolves wait() with `exitCode: null` and the signal.
 */
export interface Executor {
  /** The executor kind: "host", "fake", … */
  readonly kind: string;
  prepare(): Promise<void>;
  start(): Promise<void>;
  wait(): Promise<ExecutorResult>;
  collect(): Promise<ExecutorCollection>;
  cancel(graceMs: number): void;
  destroy(): Promise<void>;
}

/**
 * Creates the executor for a kind ("host", "fake", …) or returns undefined when this agent
 * has no executor of that kind. Must not start anything: that is prepare()'s job.
 */
export type ExecutorFactory = (kind: string, input: ExecutorInput) => Executor | undefined;
