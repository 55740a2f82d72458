import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import { posix, resolve, sep } from "node:path";
import { PassThrough, type Writable } from "node:stream";
import { processGroupRecordFile } from "../../orphan-reaper.js";
import { agentLabelFor } from "../docker-executor.js";
import type { Executor, ExecutorCollection, ExecutorInput, ExecutorResult } from "../executor.js";
import { GroupProcess } from "../group-process.js";
import { DEFAULT_PATH, workspaceName } from "../host-executor.js";
import { extractTar, writeTar } from "../libvirt-disk-tar.js";
import { checkoutSource, removeCheckoutKey } from "../source-checkout.js";
import { taskEnvironment } from "../task-environment.js";
import { workspaceLayout } from "../workspace-layout.js";
import { createLxdClient, LxdError, type LxdClient, type LxdEndpoint, type LxdExec } from "./lxd-client.js";
import { createLxdImageCache } from "./lxd-image-cache.js";
import { DEFAULT_LXD_POLICY, lxdInstanceSettings, type LxdPolicy } from "./lxd-policy.js";

/** Where the per-attempt workspace is copied inside the container. */
export const LXD_WORKSPACE = "/mottainai/workspace";

/** Instance config keys recording who made a container (user.* keys are free for clients). */
export const LXD_TASK_KEY = "user.mottainai.task";
export const LXD_ATTEMPT_KEY = "user.mottainai.attempt";
export const LXD_AGENT_KEY = "user.mottainai.agent";

/** An image server an lxd task's `image` may name as `<remote>:<alias>`. */
export interface LxdImageRemote {
  /** e.g. `https://images.example.org`. */
  server: string;
  /** "simplestreams" (image servers) or "lxd" (another LXD). Default "simplestreams". */
  protocol?: string;
}

/** Options of createLxdExecutor, set by the agent (never by a task). */
export interface LxdExecutorOptions {
  /** A shared client. Default one for `endpoint`. */
  client?: LxdClient;
  /** Where LXD is when `client` is absent. Default its unix socket DEFAULT_LXD_SOCKET. */
  endpoint?: LxdEndpoint;
  /**
   * Part of every container name (`mottainai-<agentLabel>-<hash>`), so that an agent removes
   * only what it left behind itself (removeLeftoverLxdContainers). Lowercase letters, digits
   * and "-". Default agentLabelFor(<workspaceRoot>).
   */
  agentLabel?: string;
  /** What containers may be and use. Default DEFAULT_LXD_POLICY. */
  policy?: LxdPolicy;
  /** Image servers by name for `image: <remote>:<alias>`. Default none: local images only. */
  remotes?: Readonly<Record<string, LxdImageRemote>>;
  /** PATH of the git commands of a checkout (`source`), run on the agent. Default DEFAULT_PATH. */
  path?: string;
}

/** Name prefix of the containers of one agent: `mottainai-<agentLabel>-`. */
export function lxdContainerPrefix(agentLabel: string): string {
  return `mottainai-${agentLabel}-`;
}

/**
 * The container of one attempt: `mottainai-<agentLabel>-<16 hex of sha256(taskId/attempt)>`,
 * a valid LXD name (a hostname of at most 63 characters) whatever the task id looks like.
 */
export function lxdContainerName(agentLabel: string, taskId: string, attempt: number): string {
  const hash = createHash("sha256").update(`${taskId}/${attempt}`).digest("hex").slice(0, 16);
  return `${lxdContainerPrefix(agentLabel)}${hash}`;
}

function checkAgentLabel(label: string): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,34}[a-z0-9])?$/.test(label))
    throw new Error(`lxd: the agent label "${label}" must be 1-36 lowercase letters, digits or "-"`);
  return label;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function signalName(status: number): string | undefined {
  const n = status - 128;
  return Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command of a script, as the docker executor runs it (`bash -c "cmd1 && cmd2"`, sh when
 * the image has no bash), with stderr sent to stdout so that LXD carries one ordered stream.
 */
const SCRIPT_WRAPPER = 'exec 2>&1; if [ -x /bin/bash ]; then exec /bin/bash -c "$1"; fi; exec /bin/sh -c "$1"';
const ENTRYPOINT_WRAPPER = 'exec 2>&1; exec "$@"';

/** Exit code of the artefact pull when the script left no artefact directory. */
const NO_ARTEFACTS = 3;

/** An image source of POST /1.0/instances. */
type ImageSource = Record<string, string>;

/**
 * Runs one attempt of a `lxd` task in a throwaway system container through the LXD REST API
 * (issue 19), in the order of the Executor contract:
 *
 * - prepare: checks the task against the agent's policy (lxdInstanceSettings: `CPU=`, `RAM=`,
 *   `LXD_PRIVILEGED`, `LXD_NESTING`, `binds`) and finds `image` (an alias or fingerprint on the
 *   LXD, or `<remote>:<alias>` of a configured image server), rejecting naming the key; lays
 *   out the workspace on the agent as the docker executor does (checkout of `source`,
 *   `artefact_path`, `storage_path`, `directory`, stageInputs); creates the container
 *   `lxdContainerName(...)` (profiles of the policy, the limits, `user.mottainai.*` keys), starts
 *   it and copies the workspace in to LXD_WORKSPACE (a tar through exec stdin).
 * - start: execs the script (`bash -c "<items joined with ' && '>"`, `sh -c` without bash; an
 *   `entrypoint` gets the items as arguments) through `/bin/sh -c 'exec 2>&1; …'`: stdout and
 *   stderr are one stream, bytes exact and in order, in the task's environment (the MOTTAINAI_*
 *   paths as absolute in-container paths), working directory `directory`.
 * - wait: the exit code; a cancel gives the signal. With `cache_image` a successful run is
 *   published before wait() resolves (createLxdImageCache; the artefacts are pulled first and the
 *   workspace removed, so the image holds only what the script changed elsewhere).
 * - collect: pulls `artefact_path` out of the container (a tar through exec stdout) into the
 *   workspace's artefact directory, replacing the staged inputs (the container's copy has them).
 * - cancel: SIGTERM to the script, then after `graceMs` a forced stop of the container.
 * - destroy: force-stops and deletes the container, removes the workspace.
 */
export function createLxdExecutor(input: ExecutorInput, options: LxdExecutorOptions = {}): Executor {
  const client = options.client ?? createLxdClient(options.endpoint);
  const spec = input.spec;
  const policy = options.policy ?? DEFAULT_LXD_POLICY;
  const agentLabel = checkAgentLabel(options.agentLabel ?? agentLabelFor(input.workspaceRoot));
  const name = lxdContainerName(agentLabel, input.taskId, input.attempt);
  const instancePath = `/1.0/instances/${encodeURIComponent(name)}`;
  const workspace = resolve(input.workspaceRoot, workspaceName(input.taskId, input.attempt));
  const keyFile = `${workspace}.key`;
  const tarFile = `${workspace}.tar`;
  const image = spec.image.trim();
  const cache = createLxdImageCache({
    client,
    spec: { ...spec, image },
    log: (line) => output(Buffer.from(line)),
    logger: input.logger,
  });
  let checkoutProcess: GroupProcess | undefined;
  let artefactDir = workspace;
  let artefactRelInContainer = LXD_WORKSPACE;
  let cwd = LXD_WORKSPACE;
  let env: Record<string, string> = {};
  let created = false;
  let running: LxdExec | undefined;
  let started = false;
  let cancelled = false;
  let forceTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  let exited: Promise<ExecutorResult> | undefined;
  let pulled: Promise<ExecutorCollection> | undefined;
  let outputOpen = true;
  let destroyed: Promise<void> | undefined;

  const output = (chunk: Buffer): void => {
    if (outputOpen) input.onOutput(chunk);
  };

  const forceStop = (): Promise<void> => {
    stopping ??= client.operation("PUT", `${instancePath}/state`, { action: "stop", force: true, timeout: -1 }).then(
      () => undefined,
      (err: unknown) => {
        if (!(err instanceof LxdError && (err.status === 404 || /already stopped|not running/i.test(err.message))))
          input.logger.warn({ err: errorMessage(err), container: name }, "stopping the container failed");
      },
    );
    return stopping;
  };

  /** Runs a helper command in the container; resolves with its exit code and what it printed. */
  const helper = async (
    command: string,
    opts: { stdin?: AsyncIterable<Buffer>; stdoutSink?: Writable } = {},
  ): Promise<{ code: number; text: string }> => {
    const messages: Buffer[] = [];
    const exec = await client.exec(name, {
      command: ["/bin/sh", "-c", command],
      environment: { PATH: DEFAULT_PATH, HOME: "/root", LANG: "C.UTF-8" },
      ...(opts.stdin ? { stdin: opts.stdin } : {}),
      ...(opts.stdoutSink ? { stdoutSink: opts.stdoutSink } : { onStdout: (chunk: Buffer) => messages.push(chunk) }),
      onStderr: (chunk) => messages.push(chunk),
    });
    const code = await exec.done;
    return { code, text: Buffer.concat(messages).toString("utf8").trim() };
  };

  /** The image source of the container: the cache (cache_image), a remote image, or a local alias/fingerprint. */
  const imageSource = async (): Promise<ImageSource> => {
    const cached = await cache.cached();
    if (cached !== undefined) return { type: "image", alias: cached };
    const colon = image.indexOf(":");
    if (colon > 0) {
      const remoteName = image.slice(0, colon);
      const remote = options.remotes?.[remoteName];
      if (!remote)
        throw new Error(
          `image: "${image}" names the image server "${remoteName}", which this agent does not know (known: ${Object.keys(options.remotes ?? {}).join(", ") || "none"})`,
        );
      output(Buffer.from(`Using image ${image.slice(colon + 1)} from ${remote.server}\n`));
      return {
        type: "image",
        mode: "pull",
        server: remote.server,
        protocol: remote.protocol ?? "simplestreams",
        alias: image.slice(colon + 1),
      };
    }
    try {
      await client.request("GET", `/1.0/images/aliases/${encodeURIComponent(image)}`);
      return { type: "image", alias: image };
    } catch (err) {
      if (!(err instanceof LxdError && err.status === 404))
        throw new Error(`image: cannot look up "${image}": ${errorMessage(err)}`, { cause: err });
    }
    if (/^[0-9a-f]{4,64}$/.test(image)) {
      try {
        const found = await client.request<{ fingerprint: string }>("GET", `/1.0/images/${image}`);
        return { type: "image", fingerprint: found.fingerprint };
      } catch (err) {
        if (!(err instanceof LxdError && err.status === 404))
          throw new Error(`image: cannot look up "${image}": ${errorMessage(err)}`, { cause: err });
      }
    }
    throw new Error(`image: LXD at ${client.endpoint} has no image with alias or fingerprint "${image}"`);
  };

  const pullArtefacts = (): Promise<ExecutorCollection> => {
    pulled ??= (async () => {
      const hostHas = async (): Promise<ExecutorCollection> => {
        try {
          if ((await stat(artefactDir)).isDirectory()) return { artefactDir };
        } catch {
          // Nothing there.
        }
        return {};
      };
      if (!started || cancelled || destroyed) return hostHas();
      await rm(artefactDir, { recursive: true, force: true });
      await mkdir(artefactDir, { recursive: true });
      const tar = new PassThrough();
      const extracted = extractTar(tar, artefactDir);
      extracted.catch(() => undefined);
      const dir = shellQuote(artefactRelInContainer);
      let result: { code: number; text: string };
      try {
        result = await helper(`[ -d ${dir} ] || exit ${NO_ARTEFACTS}; cd ${dir} && exec tar -c -f - .`, {
          stdoutSink: tar,
        });
      } finally {
        tar.end();
      }
      if (result.code === NO_ARTEFACTS) {
        await rm(artefactDir, { recursive: true, force: true });
        return {};
      }
      try {
        await extracted;
      } catch (err) {
        throw new Error(`artefact_path: cannot read the container's artefacts: ${errorMessage(err)}`, { cause: err });
      }
      if (result.code !== 0) throw new Error(`artefact_path: cannot copy the artefacts out of the container: ${result.text}`);
      return { artefactDir };
    })();
    return pulled;
  };

  return {
    kind: "lxd",

    async prepare(): Promise<void> {
      if (image === "") throw new Error("image: an lxd task needs an image (an LXD image alias or fingerprint)");
      const { directory, artefactPath: artefactRel, storagePath: storageRel } = workspaceLayout(workspace, spec);
      artefactDir = resolve(workspace, artefactRel);
      const settings = await lxdInstanceSettings(policy, spec);
      await rm(workspace, { recursive: true, force: true });
      await mkdir(workspace, { recursive: true, mode: 0o700 });
      if (spec.source !== "") {
        await checkoutSource({
          spec,
          workspace,
          keyFile,
          env: { PATH: options.path ?? DEFAULT_PATH, HOME: workspace, LANG: "C.UTF-8" },
          run: (argv, dir, checkoutEnv) => {
            const proc = new GroupProcess(argv, dir, checkoutEnv, output, 5000, processGroupRecordFile(workspace));
            checkoutProcess = proc;
            if (cancelled) proc.terminate(0);
            return proc.done;
          },
        });
        await removeCheckoutKey(keyFile);
      }
      if (cancelled) return;
      await mkdir(artefactDir, { recursive: true });
      await mkdir(resolve(workspace, storageRel), { recursive: true });
      await mkdir(resolve(workspace, directory), { recursive: true });
      await input.stageInputs?.({ artefactDir, storageDir: resolve(workspace, storageRel) });
      if (cancelled) return;

      const source = await imageSource();
      const inContainer = (rel: string): string => posix.join(LXD_WORKSPACE, rel.split(sep).join("/"));
      artefactRelInContainer = inContainer(artefactRel);
      cwd = inContainer(directory);
      env = {
        PATH: DEFAULT_PATH,
        HOME: "/root",
        LANG: "C.UTF-8",
        ...taskEnvironment({
          spec,
          environment: {
            ...input.environment,
            MOTTAINAI_ARTEFACT_PATH: inContainer(artefactRel),
            MOTTAINAI_STORAGE_PATH: inContainer(storageRel),
          },
        }),
      };
      if (cancelled) return;
      created = true;
      try {
        await client.operation("POST", "/1.0/instances", {
          name,
          type: "container",
          source,
          profiles: policy.profiles,
          ephemeral: false,
          config: {
            ...settings.config,
            [LXD_TASK_KEY]: input.taskId,
            [LXD_ATTEMPT_KEY]: String(input.attempt),
            [LXD_AGENT_KEY]: agentLabel,
          },
          devices: settings.devices,
        });
      } catch (err) {
        throw new Error(`cannot create the container of image "${image}": ${errorMessage(err)}`, { cause: err });
      }
      input.logger.debug({ container: name, image }, "container created");
      if (cancelled) return;
      try {
        await client.operation("PUT", `${instancePath}/state`, { action: "start", timeout: 30 });
      } catch (err) {
        throw new Error(`cannot start the container of image "${image}": ${errorMessage(err)}`, { cause: err });
      }
      if (cancelled) return;
      await writeTar(tarFile, [{ name: "workspace", path: workspace }], 512);
      const pushed = await helper(
        `rm -rf ${LXD_WORKSPACE} && mkdir -p ${posix.dirname(LXD_WORKSPACE)} && exec tar -x -f - -C ${posix.dirname(LXD_WORKSPACE)}`,
        { stdin: createReadStream(tarFile, { highWaterMark: 1 << 20 }) },
      );
      await rm(tarFile, { force: true });
      if (pushed.code !== 0 && !cancelled)
        throw new Error(`cannot copy the workspace into the container (does image "${image}" have tar?): ${pushed.text}`);
      input.logger.debug({ container: name, image }, "container ready");
    },

    async start(): Promise<void> {
      if (cancelled || destroyed || !created) return;
      const hasEntrypoint = spec.entrypoint.length > 0;
      const command = hasEntrypoint
        ? ["/bin/sh", "-c", ENTRYPOINT_WRAPPER, "sh", ...spec.entrypoint, ...spec.script]
        : ["/bin/sh", "-c", SCRIPT_WRAPPER, "sh", spec.script.join(" && ")];
      try {
        running = await client.exec(name, { command, environment: env, cwd, onStdout: output, onStderr: output });
      } catch (err) {
        throw new Error(`cannot start the script in the container of ${image}: ${errorMessage(err)}`, { cause: err });
      }
      started = true;
      const exec = running;
      exited = exec.done.then((code): ExecutorResult => {
        input.logger.debug({ container: name, code }, "script ended");
        if (cancelled) {
          const signal = code > 128 ? signalName(code) : undefined;
          return signal !== undefined ? { exitCode: null, signal } : { exitCode: null, signal: "SIGKILL" };
        }
        if (code < 0) return { exitCode: null, error: "the container stopped before the script ended" };
        return { exitCode: code };
      });
      if (cancelled) void forceStop();
    },

    async wait(): Promise<ExecutorResult> {
      if (!exited || !started)
        return { exitCode: null, error: cancelled ? "cancelled before the script started" : "the script was not started" };
      let result = await exited;
      clearTimeout(forceTimer);
      if (result.exitCode === 0 && spec.cacheImage && !cancelled) {
        try {
          await pullArtefacts();
          const cleared = await helper(`rm -rf ${LXD_WORKSPACE}`);
          if (cleared.code === 0) await cache.save(name);
        } catch (err) {
          result = { exitCode: null, error: errorMessage(err) };
        }
      }
      outputOpen = false;
      return result;
    },

    collect(): Promise<ExecutorCollection> {
      return pullArtefacts();
    },

    cancel(graceMs: number): void {
      if (cancelled) return;
      cancelled = true;
      if (checkoutProcess?.running) checkoutProcess.terminate(graceMs);
      if (!started) return;
      running?.signal(15);
      forceTimer = setTimeout(() => void forceStop(), Math.max(0, graceMs));
    },

    destroy(): Promise<void> {
      destroyed ??= (async () => {
        cancelled = true;
        clearTimeout(forceTimer);
        if (checkoutProcess) {
          checkoutProcess.kill();
          await checkoutProcess.done;
        }
        if (created) {
          await forceStop();
          try {
            await client.operation("DELETE", instancePath);
          } catch (err) {
            if (!(err instanceof LxdError && err.status === 404))
              throw new Error(`cannot delete container ${name}: ${errorMessage(err)}`, { cause: err });
          }
        }
        running?.close();
        outputOpen = false;
        await rm(tarFile, { force: true });
        await rm(workspace, { recursive: true, force: true, maxRetries: 3 });
        await removeCheckoutKey(keyFile);
      })();
      return destroyed;
    },
  };
}
