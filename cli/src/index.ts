/**
 * The `mottainai` CLI as a library: run it in-process (tests, wrappers) with your own streams.
 * The binary is `main.ts`.
 */
export { createCli, runCli, type CliOptions } from "./cli.js";
export { runCliCaptured, type CapturedRun, type CapturedRunOptions } from "./run-cli-captured.js";
export type { CliContext, CliSettings } from "./cli-context.js";
export { ExitCode, exitCodeFor } from "./exit-code.js";
export { monitorTasks, outcomeLine, type MonitorResult, type MonitorTasksOptions, type MonitoredTask } from "./monitor-tasks.js";
export {
  DEFAULT_SERVER,
  ProfileStore,
  createProfileStore,
  resolveConnection,
  type Connection,
  type Profile,
  type ProfilesFile,
} from "./profile-store.js";
