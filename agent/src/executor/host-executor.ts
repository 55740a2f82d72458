import { constants } from "node:fs";
import { access, mkdir, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { processGroupRecordFile } from "../orphan-reaper.js";
import type { Executor, ExecutorCollection, ExecutorInput, ExecutorResult } from "./executor.js";
import { workspaceLayout } from "./workspace-layout.js";
import { GroupProcess, type Exit } from "./group-process.js";
import { checkoutSource, removeCheckoutKey } from "./source-checkout.js";
import { taskEnvironment } from "./task-environment.js";

/** PATH used when the agent is given none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Options of createHostExecutor. */
export interface HostExecutorOptions {
  /** PATH the script sees, and where bash (or sh) is looked up. Default DEFAULT_PATH. */
  path?: string;
  /**
   * After the script's main process exited and its process group was killed, how long to wait
   * for the output pipe to close before giving up on late bytes. Default 2000 ms.
   */
  closeTimeoutMs?: number;
}

/** The per-attempt workspace directory name: `<taskId>-<attempt>`, made safe for a file name. */
export function workspaceName(taskId: string, attempt: number): string {
  return `${taskId.replace(/[^A-Za-z0-9._-]/g, "_")}-${attempt}`;
}

async function findExecutable(name: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * The always-available executor (DESIGN §6): runs the task's script as a subprocess on this
 * machine, in `<workspaceRoot>/<taskId>-<attempt>/`.
 *
 * - prepare: (re)creates the workspace; clones `source` into it when set (checking out
 *   `commit`, using `privkey` for ssh); creates `artefact_path` (default "artefacts"),
 *   `storage_path` (default "storage") and the working directory `directory` inside it, then
 *   lets `stageInputs` fill the input directories. Paths that leave the workspace are rejected
 *   naming the field.
 * - start: with no `entrypoint`, `bash -c "<script joined with ' && '>"` (sh when there is no
 *   bash on PATH); with an `entrypoint`, entrypoint[0] with entrypoint[1..] and then the script
 *   items as arguments. Environment: PATH, HOME (the workspace), LANG=C.UTF-8, then the
 *   assignment's variables, then the task's `environment` entries. stdin is closed; stdout
 *   and stderr are one ordered stream. The script leads its own process group.
 * - cancel: SIGTERM to the group, SIGKILL to the group after the grace.
 * - destroy: kills what is left of the group and removes the workspace.
 *
 * While a process group of the attempt (checkout or script) may be running, its id is recorded
 * in `<workspaceRoot>/<taskId>-<attempt>.pgid` (processGroupRecordFile), so that the next agent
 * can kill it with reapOrphans when this one died without destroy().
 */
export function createHostExecutor(input: ExecutorInput, options: HostExecutorOptions = {}): Executor {
  const path = options.path ?? DEFAULT_PATH;
  const closeTimeoutMs = options.closeTimeoutMs ?? 2000;
  const spec = input.spec;
  const workspace = resolve(input.workspaceRoot, workspaceName(input.taskId, input.attempt));
  const keyFile = `${workspace}.key`;
  const recordFile = processGroupRecordFile(workspace);
  let cwd = workspace;
  let artefactDir = workspace;
  let shell = "/bin/sh";
  let current: GroupProcess | undefined;
  let script: GroupProcess | undefined;
  let cancelled = false;
  let graceMs = 0;
  let destroyed: Promise<void> | undefined;

  const baseEnv = (): Record<string, string> => ({ PATH: path, HOME: workspace, LANG: "C.UTF-8" });

  const run = async (argv: string[], dir: string, env: Record<string, string>): Promise<Exit> => {
    const proc = new GroupProcess(argv, dir, env, input.onOutput, closeTimeoutMs, recordFile);
    current = proc;
    if (cancelled) proc.terminate(graceMs);
    return proc.done;
  };

  const checkout = (): Promise<void> =>
    checkoutSource({ spec, workspace, keyFile, env: baseEnv(), run: (argv, dir, env) => run(argv, dir, env) });

  return {
    kind: "host",

    async prepare(): Promise<void> {
      const layout = workspaceLayout(workspace, spec);
      cwd = resolve(workspace, layout.directory);
      artefactDir = resolve(workspace, layout.artefactPath);
      const storageDir = resolve(workspace, layout.storagePath);
      await rm(workspace, { recursive: true, force: true });
      await mkdir(workspace, { recursive: true, mode: 0o700 });
      if (spec.source !== "") await checkout();
      await mkdir(artefactDir, { recursive: true });
      await mkdir(storageDir, { recursive: true });
      await mkdir(cwd, { recursive: true });
      await input.stageInputs?.({ artefactDir, storageDir });
      shell = (await findExecutable("bash", path)) ?? (await findExecutable("sh", path)) ?? "/bin/sh";
    },

    async start(): Promise<void> {
      if (cancelled || destroyed) return;
      const argv = spec.entrypoint.length > 0 ? [...spec.entrypoint, ...spec.script] : [shell, "-c", spec.script.join(" && ")];
      const env = { ...baseEnv(), ...taskEnvironment(input) };
      const proc = new GroupProcess(argv, cwd, env, input.onOutput, closeTimeoutMs, recordFile);
      current = proc;
      script = proc;
      try {
        await proc.started;
      } catch (err) {
        throw new Error(`cannot start ${argv[0]}: ${(err as Error).message}`, { cause: err });
      }
      input.logger.debug({ pid: proc.pid, command: argv[0], cwd }, "script started");
    },

    async wait(): Promise<ExecutorResult> {
      if (!script)
        return { exitCode: null, error: cancelled ? "cancelled before the script started" : "the script was not started" };
      const exit = await script.done;
      if (exit.error !== undefined) return { exitCode: null, error: exit.error };
      if (exit.signal !== null) return { exitCode: null, signal: exit.signal };
      return { exitCode: exit.code };
    },

    async collect(): Promise<ExecutorCollection> {
      try {
        if ((await stat(artefactDir)).isDirectory()) return { artefactDir };
      } catch {
        // No artefact directory left behind by the script.
      }
      return {};
    },

    cancel(grace: number): void {
      if (cancelled) return;
      cancelled = true;
      graceMs = grace;
      if (current?.running) current.terminate(grace);
    },

    destroy(): Promise<void> {
      destroyed ??= (async () => {
        cancelled = true;
        if (current) {
          current.kill();
          await current.done;
        }
        await rm(workspace, { recursive: true, force: true, maxRetries: 3 });
        await removeCheckoutKey(keyFile);
      })();
      return destroyed;
    },
  };
}
