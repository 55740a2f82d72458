import { createHash } from "node:crypto";
import { mkdir, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { constants as osConstants } from "node:os";
import { posix, resolve, sep } from "node:path";
import type { Duplex } from "node:stream";
import Docker from "dockerode";
import { processGroupRecordFile } from "../orphan-reaper.js";
import { checkBinds, containerLimits, DEFAULT_DOCKER_POLICY, type DockerPolicy } from "./docker-policy.js";
import { createDockerImageCache, type DockerImageCacheOptions } from "./docker-image-cache.js";
import { authConfigFor, type DockerRegistryAuth } from "./docker-registry-auth.js";
import type { Executor, ExecutorCollection, ExecutorInput, ExecutorResult } from "./executor.js";
import { workspaceLayout } from "./workspace-layout.js";
import { GroupProcess } from "./group-process.js";
import { DEFAULT_PATH, workspaceName } from "./host-executor.js";
import { checkoutSource, removeCheckoutKey } from "./source-checkout.js";
import { taskEnvironment } from "./task-environment.js";

/** Where the per-attempt workspace is mounted inside the container. */
export const CONTAINER_WORKSPACE = "/mottainai/workspace";

/** Container label carrying the task id. */
export const TASK_LABEL = "mottainai.task";
/** Container label carrying the attempt number. */
export const ATTEMPT_LABEL = "mottainai.attempt";
/** Container label carrying the agent that created the container (see agentLabelFor). */
export const AGENT_LABEL = "mottainai.agent";

/** Options of createDockerExecutor, set by the agent (never by a task). */
export interface DockerExecutorOptions {
  /** The Docker Engine client. Default one from `host`. */
  docker?: Docker;
  /**
   * Docker endpoint when `docker` is absent: `unix:///path/to/docker.sock` or
   * `tcp://host:port` (plain HTTP). Default /var/run/docker.sock.
   */
  host?: string;
  /**
   * Value of the `mottainai.agent` label put on every container, so that an agent removes
   * only what it left behind itself. Default agentLabelFor(<workspaceRoot>).
   */
  agentLabel?: string;
  /**
   * What containers may do (privileged, capabilities, network, allowed binds, cpu/memory
   * defaults and maximums). Default DEFAULT_DOCKER_POLICY: unprivileged, network "none", no
   * binds, no limits.
   */
  policy?: DockerPolicy;
  /** PATH of the git commands of a checkout (`source`), run on the agent. Default DEFAULT_PATH. */
  path?: string;
  /** The agent's image-cache registry for `cache_image` tasks (createDockerImageCache). Default none. */
  imageCache?: DockerImageCacheOptions;
  /**
   * Registry credentials (`--docker-auth-file`, readDockerAuthFile): a task's image is pulled
   * with those of its registry (authConfigFor), and the image cache uses those of the cache
   * registry when `imageCache` has no username. Default none: anonymous pulls.
   */
  registryAuth?: DockerRegistryAuth;
  /** Run docker-init as PID 1 so the script gets SIGTERM on cancel. Default true. */
  init?: boolean;
  /** How long to wait for the output stream to end after the container exited. Default 5000 ms. */
  closeTimeoutMs?: number;
}

/** A Docker client for an endpoint such as `unix:///var/run/docker.sock` or `tcp://127.0.0.1:2375`. */
export function createDockerClient(host?: string): Docker {
  if (host === undefined || host === "") return new Docker({ socketPath: "/var/run/docker.sock" });
  if (host.startsWith("unix://")) return new Docker({ socketPath: host.slice("unix://".length) });
  if (host.startsWith("/")) return new Docker({ socketPath: host });
  const url = new URL(host.replace(/^tcp:/, "http:"));
  return new Docker({
    protocol: url.protocol === "https:" ? "https" : "http",
    host: url.hostname,
    port: Number(url.port || 2375),
  });
}

/**
 * The `mottainai.agent` label value of an agent: a hash of the host name and its state (or
 * work) directory, stable across restarts of the same agent and distinct between agents
 * sharing one engine.
 */
export function agentLabelFor(stateDir: string): string {
  return createHash("sha256")
    .update(`${hostname()}\0${resolve(stateDir)}`)
    .digest("hex")
    .slice(0, 16);
}

/** `image` with `:latest` added when it names no tag or digest (a pull without a tag pulls every tag). */
export function withDefaultTag(image: string): string {
  if (image.includes("@")) return image;
  const last = image.slice(image.lastIndexOf("/") + 1);
  return last.includes(":") ? image : `${image}:latest`;
}

function statusCode(err: unknown): number | undefined {
  return typeof err === "object" && err !== null && "statusCode" in err ? (err as { statusCode?: number }).statusCode : undefined;
}

function errorMessage(err: unknown): string {
  if (typeof err === "object" && err !== null && "json" in err) {
    const json = (err as { json?: { message?: string } }).json;
    if (json?.message) return json.message;
  }
  return err instanceof Error ? err.message : String(err);
}

function signalName(status: number): string | undefined {
  const n = status - 128;
  return Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
}

interface PullEvent {
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * Splits Docker's multiplexed attach stream (8-byte frame headers: stream type, 3 zero bytes,
 * big-endian length) back into payloads, in the order the engine sent them.
 */
function createDemuxer(onPayload: (chunk: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      if (size > 0) onPayload(pending.subarray(8, 8 + size));
      pending = pending.subarray(8 + size);
    }
  };
}

/**
 * The shell wrapper that runs a script as the original Mottainai did (`bash -c "cmd1 && cmd2"`,
 * sh when the image has no bash) with stderr sent to stdout, so the engine sees a single
 * ordered stream and no byte is changed (no TTY, so no "\r" is added).
 */
const SCRIPT_WRAPPER = 'exec 2>&1; if [ -x /bin/bash ]; then exec /bin/bash -c "$1"; fi; exec /bin/sh -c "$1"';
/** The wrapper for a task with an `entrypoint`: the entrypoint and the script items as its arguments. */
const ENTRYPOINT_WRAPPER = 'exec 2>&1; exec "$@"';

/**
 * Runs one attempt of a `docker`/`docker_execute` task in a container through the Docker
 * Engine API (DESIGN §6, issue 4), in the order of the Executor contract:
 *
 * - prepare: first checks the task against the agent's policy (DockerPolicy): `CPU=`/`RAM=`
 *   within the maximums (containerLimits) and `binds` under the allowed paths (checkBinds),
 *   rejecting with an error naming the variable or bind before anything is created; then
 *   (re)creates `<workspaceRoot>/<taskId>-<attempt>/`, clones `source` into it at `commit` (with
 *   `privkey`; checkoutSource, as the host executor), creates `artefact_path` (default
 *   "artefacts"), `storage_path` (default "storage") and `directory` inside it (paths leaving
 *   it are rejected naming the field) and lets `stageInputs` fill the inputs; takes `image` from the engine, else pulls it with the
 *   credentials of its registry (`registryAuth`; progress lines go to the output); creates the
 *   container: the workspace bind-mounted at CONTAINER_WORKSPACE, working directory
 *   `directory` in it, the task's allowed binds, the MOTTAINAI_* variables (the artefact and
 *   storage paths as absolute in-container paths) then the task's `environment`, the policy's
 *   privileged mode, capabilities and network mode, the cpu/memory limits, labels
 *   mottainai.task/attempt/agent.
 * - start: attaches to the output and starts the container. Without `entrypoint` the script runs
 *   as `bash -c "<items joined with ' && '>"` (`sh -c` when the image has no /bin/bash); with
 *   one, the entrypoint runs with the script items as arguments. Both go through /bin/sh of the
 *   image to send stderr to stdout: one stream, bytes exact and in order.
 * - cancel: `docker stop` with the grace rounded up to seconds (SIGTERM, then SIGKILL).
 * - destroy: removes the container (forced, with its anonymous volumes) and the workspace.
 * - image cache (`cache_image`, `cache_clean`, `prune`; createDockerImageCache): the cached image
 *   replaces `image` when the registry has it; a successful run is committed and pushed before
 *   wait() resolves; `prune` cleans up in destroy.
 */
export function createDockerExecutor(input: ExecutorInput, options: DockerExecutorOptions = {}): Executor {
  const docker = options.docker ?? createDockerClient(options.host);
  const spec = input.spec;
  const workspace = resolve(input.workspaceRoot, workspaceName(input.taskId, input.attempt));
  const agentLabel = options.agentLabel ?? agentLabelFor(input.workspaceRoot);
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  const imageCache = createDockerImageCache({
    docker,
    ...(options.imageCache ? { options: options.imageCache } : {}),
    ...(options.registryAuth ? { registryAuth: options.registryAuth } : {}),
    spec: { ...spec, image: withDefaultTag(spec.image.trim()) },
    log: (line) => output(Buffer.from(line)),
    logger: input.logger,
  });
  const policy = options.policy ?? DEFAULT_DOCKER_POLICY;
  const keyFile = `${workspace}.key`;
  let checkoutProcess: GroupProcess | undefined;
  let artefactDir = workspace;
  let container: Docker.Container | undefined;
  let stream: Duplex | undefined;
  let streamEnded: Promise<void> = Promise.resolve();
  let outputOpen = true;
  let started = false;
  let cancelled = false;
  let cancelGraceMs = 0;
  let stopping: Promise<void> | undefined;
  let exited: Promise<ExecutorResult> | undefined;
  let destroyed: Promise<void> | undefined;

  const output = (chunk: Buffer): void => {
    if (outputOpen) input.onOutput(chunk);
  };

  /** The image to create the container from: the cached one (cache_image), else `image`, pulled when missing. */
  const ensureImage = async (image: string): Promise<string> => {
    const cached = await imageCache.pullCached();
    if (cached !== undefined) return cached;
    try {
      await docker.getImage(image).inspect();
      return image;
    } catch (err) {
      if (statusCode(err) !== 404) throw new Error(`image: cannot inspect "${image}": ${errorMessage(err)}`, { cause: err });
    }
    output(Buffer.from(`Pulling image ${image}\n`));
    const authconfig = authConfigFor(options.registryAuth, image);
    try {
      const pull = (await docker.pull(image, authconfig ? { authconfig } : {})) as NodeJS.ReadableStream;
      await new Promise<void>((resolvePull, rejectPull) => {
        let failure: string | undefined;
        docker.modem.followProgress(
          pull,
          (err: Error | null) => {
            if (err) rejectPull(err);
            else if (failure !== undefined) rejectPull(new Error(failure));
            else resolvePull();
          },
          (event: PullEvent) => {
            if (event.error) {
              failure ??= event.errorDetail?.message ?? event.error;
              return;
            }
            const line = [event.id, event.status, event.progress].filter((s) => s !== undefined && s !== "").join(" ");
            if (line !== "") output(Buffer.from(`${line}\n`));
          },
        );
      });
    } catch (err) {
      throw new Error(`image: "${image}" is not on this agent's engine and cannot be pulled: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    return image;
  };

  const stopContainer = (graceMs: number): Promise<void> => {
    stopping ??= (async () => {
      const c = container;
      if (!c) return;
      try {
        await c.stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
      } catch (err) {
        const code = statusCode(err);
        if (code === 304 || code === 404) return;
        input.logger.warn({ err: errorMessage(err) }, "docker stop failed; killing the container");
        await c.kill().catch(() => undefined);
      }
    })();
    return stopping;
  };

  return {
    kind: "docker",

    async prepare(): Promise<void> {
      if (spec.image.trim() === "") throw new Error("image: a docker task needs an image");
      const image = withDefaultTag(spec.image.trim());
      const { directory, artefactPath: artefactRel, storagePath: storageRel } = workspaceLayout(workspace, spec);
      artefactDir = resolve(workspace, artefactRel);
      const limits = containerLimits(policy, spec.environment);
      const binds = await checkBinds(policy, spec.binds);
      await rm(workspace, { recursive: true, force: true });
      await mkdir(workspace, { recursive: true, mode: 0o700 });
      if (spec.source !== "") {
        const path = options.path ?? DEFAULT_PATH;
        await checkoutSource({
          spec,
          workspace,
          keyFile,
          env: { PATH: path, HOME: workspace, LANG: "C.UTF-8" },
          run: (argv, cwd, env) => {
            const proc = new GroupProcess(argv, cwd, env, output, closeTimeoutMs, processGroupRecordFile(workspace));
            checkoutProcess = proc;
            if (cancelled) proc.terminate(0);
            return proc.done;
          },
        });
      }
      if (cancelled) return;
      await mkdir(artefactDir, { recursive: true });
      await mkdir(resolve(workspace, storageRel), { recursive: true });
      await mkdir(resolve(workspace, directory), { recursive: true });
      if (cancelled) return;
      await input.stageInputs?.({ artefactDir, storageDir: resolve(workspace, storageRel) });
      if (cancelled) return;
      const runImage = await ensureImage(image);
      if (cancelled) return;

      const inContainer = (rel: string): string => posix.join(CONTAINER_WORKSPACE, rel.split(sep).join("/"));
      const env = taskEnvironment({
        spec,
        environment: {
          ...input.environment,
          MOTTAINAI_ARTEFACT_PATH: inContainer(artefactRel),
          MOTTAINAI_STORAGE_PATH: inContainer(storageRel),
        },
      });
      const hasEntrypoint = spec.entrypoint.length > 0;
      container = await docker.createContainer({
        Image: runImage,
        Entrypoint: hasEntrypoint
          ? ["/bin/sh", "-c", ENTRYPOINT_WRAPPER, "sh", ...spec.entrypoint]
          : ["/bin/sh", "-c", SCRIPT_WRAPPER, "sh"],
        Cmd: hasEntrypoint ? [...spec.script] : [spec.script.join(" && ")],
        WorkingDir: inContainer(directory),
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Labels: { [TASK_LABEL]: input.taskId, [ATTEMPT_LABEL]: String(input.attempt), [AGENT_LABEL]: agentLabel },
        Tty: false,
        OpenStdin: false,
        AttachStdout: true,
        AttachStderr: true,
        HostConfig: {
          Binds: [`${workspace}:${CONTAINER_WORKSPACE}`, ...binds],
          NetworkMode: policy.networkMode,
          Privileged: policy.privileged,
          ...(policy.capAdd.length > 0 ? { CapAdd: [...policy.capAdd] } : {}),
          ...(policy.capDrop.length > 0 ? { CapDrop: [...policy.capDrop] } : {}),
          ...(limits.nanoCpus !== undefined ? { NanoCpus: limits.nanoCpus } : {}),
          ...(limits.memory !== undefined ? { Memory: limits.memory, MemorySwap: limits.memory } : {}),
          Init: options.init ?? true,
          AutoRemove: false,
        },
      });
      input.logger.debug({ container: container.id, image }, "container created");
    },

    async start(): Promise<void> {
      if (cancelled || destroyed || !container) return;
      const c = container;
      const attached = (await c.attach({ stream: true, stdout: true, stderr: true })) as Duplex;
      stream = attached;
      const demux = createDemuxer(output);
      streamEnded = new Promise((resolveEnded) => {
        attached.on("data", (chunk: Buffer) => demux(chunk));
        attached.once("end", () => resolveEnded());
        attached.once("close", () => resolveEnded());
        attached.once("error", () => resolveEnded());
      });
      const waitForExit = async (): Promise<ExecutorResult> => {
        try {
          const r = (await c.wait()) as { StatusCode: number; Error?: { Message?: string } | null };
          if (r.Error?.Message) return { exitCode: null, error: r.Error.Message };
          if (cancelled && r.StatusCode > 128) {
            const signal = signalName(r.StatusCode);
            return signal !== undefined ? { exitCode: null, signal } : { exitCode: r.StatusCode };
          }
          return { exitCode: r.StatusCode };
        } catch (err) {
          return { exitCode: null, error: `waiting for the container failed: ${errorMessage(err)}` };
        }
      };
      try {
        await c.start();
      } catch (err) {
        attached.destroy();
        throw new Error(`cannot start the container of ${spec.image}: ${errorMessage(err)}`, { cause: err });
      }
      // Waiting for "not-running" once started also covers a container that already exited.
      exited = waitForExit();
      started = true;
      input.logger.debug({ container: c.id }, "container started");
      if (cancelled) void stopContainer(cancelGraceMs);
    },

    async wait(): Promise<ExecutorResult> {
      if (!exited || !started)
        return { exitCode: null, error: cancelled ? "cancelled before the script started" : "the script was not started" };
      const result = await exited;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([streamEnded, new Promise<void>((r) => (timer = setTimeout(r, closeTimeoutMs)))]);
      clearTimeout(timer);
      if (result.exitCode === 0 && result.error === undefined && !cancelled && container) await imageCache.save(container);
      outputOpen = false;
      stream?.destroy();
      return result;
    },

    async collect(): Promise<ExecutorCollection> {
      try {
        if ((await stat(artefactDir)).isDirectory()) return { artefactDir };
      } catch {
        // No artefact directory left behind by the script.
      }
      return {};
    },

    cancel(graceMs: number): void {
      if (cancelled) return;
      cancelled = true;
      cancelGraceMs = graceMs;
      if (checkoutProcess?.running) checkoutProcess.terminate(graceMs);
      if (started) void stopContainer(graceMs);
    },

    destroy(): Promise<void> {
      destroyed ??= (async () => {
        cancelled = true;
        if (checkoutProcess) {
          checkoutProcess.kill();
          await checkoutProcess.done;
        }
        const c = container;
        if (c) {
          try {
            await c.remove({ force: true, v: true });
          } catch (err) {
            const code = statusCode(err);
            if (code !== 404 && code !== 409)
              throw new Error(`cannot remove container ${c.id}: ${errorMessage(err)}`, { cause: err });
          }
        }
        outputOpen = false;
        stream?.destroy();
        await imageCache.prune();
        await rm(workspace, { recursive: true, force: true, maxRetries: 3 });
        await removeCheckoutKey(keyFile);
      })();
      return destroyed;
    },
  };
}
