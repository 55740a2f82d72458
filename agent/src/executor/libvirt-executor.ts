import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, posix, resolve, sep } from "node:path";
import { processGroupRecordFile } from "../orphan-reaper.js";
import { agentLabelFor } from "./docker-executor.js";
import type { Executor, ExecutorCollection, ExecutorInput, ExecutorResult } from "./executor.js";
import { workspaceLayout } from "./workspace-layout.js";
import { GroupProcess } from "./group-process.js";
import { DEFAULT_PATH, workspaceName } from "./host-executor.js";
import { listenConsole, listenSerial, type ConsoleEnd, type ConsoleListener, type SerialListener } from "./libvirt-console.js";
import { loadLibvirtBinding, type LibvirtDomain, type LibvirtHypervisor } from "./libvirt-binding.js";
import { extractTar, writeTar } from "./libvirt-disk-tar.js";
import { DEFAULT_KERNEL_CMDLINE, domainName, taskDomainXml } from "./libvirt-domain-xml.js";
import { createOverlay, findLibvirtImage, type LibvirtImage } from "./libvirt-images.js";
import { checkoutSource, removeCheckoutKey } from "./source-checkout.js";
import { taskEnvironment } from "./task-environment.js";
import { resourceRequest } from "./task-environment.js";

/** Where the guest runner puts the workspace inside the guest (docs/libvirt-guest.md). */
export const GUEST_WORKSPACE = "/mottainai/workspace";

/** Default libvirt connection URI. */
export const DEFAULT_LIBVIRT_URI = "qemu:///system";

/** Size of the status block at the start of the output disk; the artefact tar follows it. */
export const STATUS_BLOCK_BYTES = 4096;

/** Options of createLibvirtExecutor, set by the agent (never by a task). */
export interface LibvirtExecutorOptions {
  /** Directory of the task images: `<imageDir>/<image>/` (findLibvirtImage). Required. */
  imageDir: string;
  /** libvirt connection URI. Default DEFAULT_LIBVIRT_URI (qemu:///system). */
  uri?: string;
  /** A shared, lazily opened connection (createLibvirtConnection). Default one per factory. */
  connection?: LibvirtConnection;
  /**
   * Prefix of the domain names (`mottainai-<agentLabel>-…`) so an agent removes only its own
   * leftovers at start. Default agentLabelFor(<workspaceRoot>).
   */
  agentLabel?: string;
  /** vCPUs of a VM whose task asks for none (`CPU=`). Default 1. */
  defaultCpus?: number;
  /** Most vCPUs a task may ask for. Default the number of host cpus. */
  maxCpus?: number;
  /** Memory in MiB of a VM whose task asks for none (`RAM=`). Default 512. */
  defaultMemoryMiB?: number;
  /** Most memory in MiB a task may ask for. Default the host's memory. */
  maxMemoryMiB?: number;
  /** Size of the sparse output disk, the most artefact bytes a task may produce. Default 8 GiB. */
  outputDiskBytes?: number;
  /** How long the guest may take to boot and start the script. Default 120000 ms. */
  bootTimeoutMs?: number;
  /**
   * Directory in which each run gets its own socket directory (runSocketDirPrefix), removed
   * with the run. Unix socket paths are limited to 107 bytes, so it must be short. Default the
   * system's temporary directory.
   */
  socketDir?: string;
  /** Where libvirt keeps each domain's log, removed after the run. Default /var/log/libvirt/qemu for qemu:///system. */
  qemuLogDir?: string;
  /**
   * Where libvirt keeps each running domain's qemu pid (`<name>.pid`): a cancel kills that qemu
   * at once before asking libvirt to destroy the domain, which under load takes seconds.
   * Default /run/libvirt/qemu for qemu:///system; absent: libvirt's destroy alone.
   */
  qemuPidDir?: string;
  /** PATH of the git commands of a checkout (`source`) on the agent, and of qemu-img. Default DEFAULT_PATH. */
  path?: string;
}

/** One libvirt connection shared by the executors of an agent, opened on first use. */
export interface LibvirtConnection {
  readonly uri: string;
  hypervisor(): Promise<LibvirtHypervisor>;
  close(): Promise<void>;
}

/** A lazily opened connection to `uri`; a failed open is retried on the next use. */
export function createLibvirtConnection(uri: string = DEFAULT_LIBVIRT_URI): LibvirtConnection {
  let opening: Promise<LibvirtHypervisor> | undefined;
  return {
    uri,
    hypervisor(): Promise<LibvirtHypervisor> {
      opening ??= (async () => {
        const { Hypervisor } = await loadLibvirtBinding();
        const h = new Hypervisor({ uri });
        try {
          await h.connectOpen();
        } catch (err) {
          opening = undefined;
          throw new Error(`cannot connect to libvirt at ${uri}: ${(err as Error).message}`, { cause: err });
        }
        return h;
      })();
      return opening;
    },
    async close(): Promise<void> {
      const h = opening;
      opening = undefined;
      if (h) await (await h.catch(() => undefined))?.connectClose().catch(() => undefined);
    },
  };
}

/** Name prefix of the per-run socket directories of one agent, `mottainai-vm-<agentLabel>-`. */
export function runSocketDirPrefix(agentLabel: string): string {
  return `mottainai-vm-${agentLabel}-`;
}

/** The libvirt log directory of `uri` when it is local and known, else undefined. */
export function defaultQemuLogDir(uri: string): string | undefined {
  return uri === "qemu:///system" ? "/var/log/libvirt/qemu" : undefined;
}

/** The libvirt qemu pid directory of `uri` when it is local and known, else undefined. */
export function defaultQemuPidDir(uri: string): string | undefined {
  return uri === "qemu:///system" ? "/run/libvirt/qemu" : undefined;
}

/**
 * Sends SIGKILL to the qemu of domain `name` when `pidDir` has its pid file and that process
 * is the domain's qemu (its command line names `guest=<name>`). Best effort: resolves with
 * whether it killed one.
 */
export async function killQemu(pidDir: string, name: string): Promise<boolean> {
  try {
    const pid = Number((await readFile(join(pidDir, `${name}.pid`), "utf8")).trim());
    if (!Number.isInteger(pid) || pid <= 1) return false;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    if (!cmdline.some((arg) => arg === `guest=${name}` || arg.startsWith(`guest=${name},`))) return false;
    process.kill(pid, "SIGKILL");
    return true;
  } catch {
    return false;
  }
}

/** vCPUs and memory of one VM. */
export interface VmLimits {
  vcpus: number;
  memoryMiB: number;
}

const MEMORY_UNITS: Record<string, number> = { k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 };

/**
 * Parses a VM memory size into MiB: a plain number is MiB (as the original's `RAM=` for
 * vagrant-libvirt), or with a unit k, m, g, t (powers of 1024, optional trailing "b" / "ib").
 */
export function parseMemoryMiB(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?)?$/i.exec(text.trim());
  if (!m) return undefined;
  const mib = Math.floor(Number(m[1]) * (MEMORY_UNITS[(m[2] ?? "m").toLowerCase()] ?? 1));
  return Number.isSafeInteger(mib) && mib > 0 ? mib : undefined;
}

/** Smallest memory a VM gets: the cloud kernel needs about this much to boot an initramfs. */
export const MIN_VM_MEMORY_MIB = 128;

/**
 * The vCPUs and memory of a task's VM: `CPU=` (a whole number of vCPUs) and `RAM=` (MiB, or
 * a size such as "1g") from the task's `environment` (the last entry of a name wins), else the
 * defaults, within the maximums. Throws naming `CPU` or `RAM`.
 */
export function vmLimits(
  environment: readonly string[],
  limits: { defaultCpus: number; maxCpus: number; defaultMemoryMiB: number; maxMemoryMiB: number },
): VmLimits {
  const { cpu: cpuText, ram: ramText } = resourceRequest(environment);
  let vcpus = limits.defaultCpus;
  if (cpuText !== undefined && cpuText.trim() !== "") {
    const t = cpuText.trim();
    if (!/^\d+$/.test(t) || Number(t) < 1) throw new Error(`CPU: expected a whole number of vCPUs such as "2", got "${cpuText}"`);
    vcpus = Number(t);
    if (vcpus > limits.maxCpus) throw new Error(`CPU: ${t} is above this agent's maximum of ${limits.maxCpus}`);
  }
  let memoryMiB = limits.defaultMemoryMiB;
  if (ramText !== undefined && ramText.trim() !== "") {
    const asked = parseMemoryMiB(ramText);
    if (asked === undefined) throw new Error(`RAM: expected MiB or a size such as "512m" or "2g", got "${ramText}"`);
    if (asked > limits.maxMemoryMiB)
      throw new Error(`RAM: ${ramText.trim()} is above this agent's maximum of ${limits.maxMemoryMiB} MiB`);
    if (asked < MIN_VM_MEMORY_MIB) throw new Error(`RAM: ${ramText.trim()} is below the minimum of ${MIN_VM_MEMORY_MIB} MiB`);
    memoryMiB = asked;
  }
  return { vcpus, memoryMiB };
}

/** Quotes `text` for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Runs the script as the original did (`bash -c "a && b"`, sh when the image has no bash). */
const SCRIPT_WRAPPER = 'if [ -x /bin/bash ]; then exec /bin/bash -c "$1"; fi; exec /bin/sh -c "$1"';

/**
 * The guest's `/mottainai/run`: changes to the working directory and executes the script (or
 * the entrypoint with the script items as arguments) in exactly the task's environment.
 */
export function guestRunScript(spec: ExecutorInput["spec"], cwd: string, env: Record<string, string>): string {
  const assignments = Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`));
  const command =
    spec.entrypoint.length > 0
      ? [...spec.entrypoint, ...spec.script].map(shellQuote)
      : ["/bin/sh", "-c", shellQuote(SCRIPT_WRAPPER), "sh", shellQuote(spec.script.join(" && "))];
  return [
    "# Written by the mottainai agent (docs/libvirt-guest.md).",
    `cd ${shellQuote(cwd)} || exit 1`,
    `exec env -i ${assignments.join(" ")} ${command.join(" ")}`,
    "",
  ].join("\n");
}

/** The status block the guest wrote at the start of the output disk. */
export interface GuestStatus {
  exitCode: number;
  /** "ok": the artefact tar follows; "missing": there was no artefact directory; "failed": writing it failed. */
  artefacts: "ok" | "missing" | "failed";
}

/** Reads the status block of an output disk; undefined when the guest wrote none. */
export async function readGuestStatus(outputDisk: string): Promise<GuestStatus | undefined> {
  const handle = await open(outputDisk, "r");
  try {
    const buf = Buffer.alloc(STATUS_BLOCK_BYTES);
    await handle.read(buf, 0, buf.length, 0);
    const end = buf.indexOf(0);
    const text = buf.subarray(0, end < 0 ? buf.length : end).toString("utf8");
    if (!text.startsWith("MOTTAINAI-STATUS 1\n")) return undefined;
    const exit = /^exit=(\d+)$/m.exec(text);
    const artefacts = /^artefacts=(ok|missing|failed)$/m.exec(text);
    if (!exit || !artefacts) return undefined;
    return { exitCode: Number(exit[1]), artefacts: artefacts[1] as GuestStatus["artefacts"] };
  } finally {
    await handle.close();
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether the domain `name` exists and is active; an unknown domain is not. */
async function isActive(hypervisor: LibvirtHypervisor, name: string): Promise<boolean> {
  try {
    const domain = await hypervisor.domainLookupByName(name);
    const info = await domain.getInfo();
    return info.state !== (await loadLibvirtBinding()).DomainState.SHUTOFF;
  } catch {
    return false;
  }
}

/**
 * Destroys the domain `name` (and undefines it when it is persistent), then waits up to
 * `settleMs` until libvirt no longer reports it running. A domain that is already gone is
 * not an error. Resolves with whether the domain was running.
 */
export async function destroyDomain(hypervisor: LibvirtHypervisor, name: string, settleMs = 5000): Promise<boolean> {
  let domain: LibvirtDomain;
  try {
    domain = await hypervisor.domainLookupByName(name);
  } catch {
    return false;
  }
  let wasRunning = false;
  try {
    const info = await domain.getInfo();
    wasRunning = info.state !== (await loadLibvirtBinding()).DomainState.SHUTOFF;
    if (wasRunning) await domain.destroy();
  } catch {
    // Ended meanwhile.
  }
  await domain.undefine().catch(() => undefined);
  for (const deadline = Date.now() + settleMs; Date.now() < deadline && (await isActive(hypervisor, name));) await sleep(50);
  return wasRunning;
}

/**
 * Runs one attempt of a `libvirt` / `libvirt_execute` / `libvirt_vagrant` task in a throwaway
 * VM through libvirtd (DESIGN §6, issue 5; the guest side is docs/libvirt-guest.md):
 *
 * - prepare: checks `CPU=` / `RAM=` against the maximums (vmLimits) and finds `image` in the
 *   image directory (findLibvirtImage), rejecting naming the variable or `image`; then
 *   (re)creates the workspace `<workspaceRoot>/<taskId>-<attempt>/` as the host executor does
 *   (checkout of `source`, `artefact_path`, `storage_path`, `directory`, stageInputs), and in
 *   `<workspace>.vm/` the input disk (a tar of `/mottainai/run`, `nonce`, `artefacts` and the
 *   workspace as `mottainai/workspace`), the sparse output disk and, for a disk image, the
 *   task's qcow2 overlay of the base disk.
 * - start: listens on the console sockets, then creates a transient `type='qemu'` domain
 *   named `mottainai-<agentLabel>-<taskId>-<attempt>` (taskDomainXml). Rejects with libvirt's
 *   message and the end of the domain's log when the domain cannot start.
 * - output: the guest's output port (virtio-serial, not the console: qemu drops console bytes
 *   under load), bytes exact, as listenConsole delivers it.
 * - wait: resolves once the domain ended and its output socket closed: the exit code of the guest's
 *   trailer; an error with the end of the kernel's console when the guest ended without one
 *   (panic, crash) or did not start the script within bootTimeoutMs; `signal: "SIGKILL"` when
 *   cancelled.
 * - collect: extracts the artefact tar of the output disk into `artefact_path` (replacing what
 *   was there: the guest's copy includes the staged inputs).
 * - cancel: ends the VM at once (a VM has no graceful stop worth waiting for): kills the
 *   domain's qemu (killQemu), then destroys the domain through libvirt, whose own teardown takes
 *   seconds on a loaded machine.
 * - destroy: destroys the domain if it runs, closes the sockets, removes the workspace,
 *   `<workspace>.vm/` and the domain's libvirt log.
 */
export function createLibvirtExecutor(input: ExecutorInput, options: LibvirtExecutorOptions): Executor {
  const spec = input.spec;
  const uri = options.uri ?? options.connection?.uri ?? DEFAULT_LIBVIRT_URI;
  const connection = options.connection ?? createLibvirtConnection(uri);
  const agentLabel = options.agentLabel ?? agentLabelFor(input.workspaceRoot);
  const workspace = resolve(input.workspaceRoot, workspaceName(input.taskId, input.attempt));
  const scratch = `${workspace}.vm`;
  const socketDir = join(options.socketDir ?? tmpdir(), `${runSocketDirPrefix(agentLabel)}${randomBytes(6).toString("hex")}`);
  const qemuLogDir = options.qemuLogDir ?? defaultQemuLogDir(uri);
  const qemuPidDir = options.qemuPidDir ?? defaultQemuPidDir(uri);
  const name = domainName(agentLabel, input.taskId, input.attempt);
  const consoleSocket = join(socketDir, "output");
  const serialSocket = join(socketDir, "serial");
  const inputDisk = join(scratch, "input.tar");
  const outputDisk = join(scratch, "output.raw");
  const overlay = join(scratch, "root.qcow2");
  const keyFile = `${workspace}.key`;
  const nonce = randomBytes(16).toString("hex");
  const bootTimeoutMs = options.bootTimeoutMs ?? 120_000;
  const path = options.path ?? DEFAULT_PATH;

  let image: LibvirtImage | undefined;
  let limits: VmLimits | undefined;
  let artefactDir = workspace;
  let checkoutProcess: GroupProcess | undefined;
  let outputPort: ConsoleListener | undefined;
  let serial: SerialListener | undefined;
  let domainCreated = false;
  let started = false;
  let cancelled = false;
  let bootTimedOut = false;
  let outputOpen = true;
  let killing: Promise<void> | undefined;
  let waited: Promise<ExecutorResult> | undefined;
  let status: GuestStatus | undefined;
  let destroyed: Promise<void> | undefined;

  const output = (chunk: Buffer): void => {
    if (outputOpen) input.onOutput(chunk);
  };

  const killDomain = (): Promise<void> => {
    killing ??= (async () => {
      try {
        if (qemuPidDir !== undefined) await killQemu(qemuPidDir, name);
        await destroyDomain(await connection.hypervisor(), name);
      } catch (err) {
        input.logger.warn({ err: errorMessage(err), domain: name }, "destroying the domain failed");
      }
    })();
    return killing;
  };

  const closeSockets = async (): Promise<void> => {
    await Promise.all([outputPort?.close(), serial?.close()]);
  };

  const qemuLogTail = async (): Promise<string> => {
    if (qemuLogDir === undefined) return "";
    try {
      const text = await readFile(join(qemuLogDir, `${name}.log`), "utf8");
      return text.split("\n").slice(-15).join("\n").trim();
    } catch {
      return "";
    }
  };

  const consoleTail = (): string => {
    const lines = (serial?.tail() ?? "").split("\n").filter((l) => l.trim() !== "");
    return lines.slice(-20).join("\n");
  };

  const awaitEnd = async (): Promise<ExecutorResult> => {
    const c = outputPort as ConsoleListener;
    const bootTimer = setTimeout(() => {
      if (c.started) return;
      bootTimedOut = true;
      void killDomain();
    }, bootTimeoutMs);
    let end: ConsoleEnd;
    try {
      end = await c.ended;
    } finally {
      clearTimeout(bootTimer);
    }
    // The output socket closes when qemu exits; make sure the domain is really gone.
    const hypervisor = await connection.hypervisor();
    for (const deadline = Date.now() + 3000; Date.now() < deadline && (await isActive(hypervisor, name));) await sleep(50);
    if (await isActive(hypervisor, name)) await killDomain();
    // Let the serial console's last bytes arrive.
    await sleep(50);
    if (cancelled && end.exitCode === undefined) return { exitCode: null, signal: "SIGKILL" };
    if (end.exitCode !== undefined) {
      status = await readGuestStatus(outputDisk).catch(() => undefined);
      return { exitCode: end.exitCode };
    }
    const reason = bootTimedOut
      ? `the guest did not start the task within ${bootTimeoutMs / 1000}s`
      : c.started
        ? "the VM ended before the task reported an exit code (the guest died, panicked or was destroyed)"
        : "the VM ended before the guest started the task";
    const tail = consoleTail();
    const cause = /^.*(Kernel panic|mottainai-guest: error|Out of memory|BUG:|Oops).*$/m.exec(serial?.tail() ?? "")?.[0]?.trim();
    const error = cause !== undefined ? `${reason}: ${cause}` : reason;
    output(Buffer.from(`\n[mottainai] ${error}${tail !== "" ? `\n[mottainai] the guest's console ended with:\n${tail}` : ""}\n`));
    return { exitCode: null, error };
  };

  return {
    kind: "libvirt",

    async prepare(): Promise<void> {
      limits = vmLimits(spec.environment, {
        defaultCpus: options.defaultCpus ?? 1,
        maxCpus: options.maxCpus ?? cpus().length,
        defaultMemoryMiB: options.defaultMemoryMiB ?? 512,
        maxMemoryMiB: options.maxMemoryMiB ?? Math.floor(totalmem() / 1024 / 1024),
      });
      image = await findLibvirtImage(options.imageDir, spec.image);
      const { directory, artefactPath: artefactRel, storagePath: storageRel } = workspaceLayout(workspace, spec);
      artefactDir = resolve(workspace, artefactRel);
      const storageDir = resolve(workspace, storageRel);
      await rm(workspace, { recursive: true, force: true });
      await rm(scratch, { recursive: true, force: true });
      await mkdir(workspace, { recursive: true, mode: 0o700 });
      if (spec.source !== "") {
        await checkoutSource({
          spec,
          workspace,
          keyFile,
          env: { PATH: path, HOME: workspace, LANG: "C.UTF-8" },
          run: (argv, cwd, env) => {
            const proc = new GroupProcess(argv, cwd, env, output, 5000, processGroupRecordFile(workspace));
            checkoutProcess = proc;
            if (cancelled) proc.terminate(0);
            return proc.done;
          },
        });
        await removeCheckoutKey(keyFile);
      }
      if (cancelled) return;
      await mkdir(artefactDir, { recursive: true });
      await mkdir(storageDir, { recursive: true });
      await mkdir(resolve(workspace, directory), { recursive: true });
      if (input.stageInputs) await input.stageInputs({ artefactDir, storageDir });
      if (cancelled) return;

      const inGuest = (rel: string): string => posix.join(GUEST_WORKSPACE, rel.split(sep).join("/"));
      const env = {
        PATH: DEFAULT_PATH,
        HOME: "/root",
        LANG: "C.UTF-8",
        ...taskEnvironment({
          spec,
          environment: {
            ...input.environment,
            MOTTAINAI_ARTEFACT_PATH: inGuest(artefactRel),
            MOTTAINAI_STORAGE_PATH: inGuest(storageRel),
          },
        }),
      };
      await mkdir(scratch, { recursive: true, mode: 0o711 });
      await writeTar(inputDisk, [
        { name: "mottainai/run", content: Buffer.from(guestRunScript(spec, inGuest(directory), env)), mode: 0o755 },
        { name: "mottainai/nonce", content: Buffer.from(`${nonce}\n`) },
        { name: "mottainai/artefacts", content: Buffer.from(`${inGuest(artefactRel)}\n`) },
        { name: "mottainai/workspace", path: workspace },
      ]);
      const out = await open(outputDisk, "w", 0o644);
      try {
        await out.truncate(options.outputDiskBytes ?? 8 * 1024 ** 3);
      } finally {
        await out.close();
      }
      if (image.disk) await createOverlay(image.disk, overlay);
      if (Buffer.byteLength(consoleSocket) > 107)
        throw new Error(
          `the VM's socket path ${consoleSocket} is longer than 107 bytes: give the agent a shorter socket directory`,
        );
      await mkdir(socketDir, { recursive: true, mode: 0o711 });
    },

    async start(): Promise<void> {
      if (cancelled || destroyed || !image || !limits) return;
      outputPort = await listenConsole({ path: consoleSocket, nonce, onOutput: output });
      serial = await listenSerial(serialSocket);
      const xml = taskDomainXml({
        name,
        agentLabel,
        taskId: input.taskId,
        attempt: input.attempt,
        vcpus: limits.vcpus,
        memoryMiB: limits.memoryMiB,
        ...(image.boot
          ? {
              boot: {
                kernel: image.boot.kernel,
                initrd: image.boot.initrd,
                cmdline: [DEFAULT_KERNEL_CMDLINE, image.boot.cmdline].filter((s) => s !== "").join(" "),
              },
            }
          : {}),
        ...(image.disk ? { rootDisk: { file: overlay, format: "qcow2" as const } } : {}),
        inputDisk,
        outputDisk,
        consoleSocket,
        serialSocket,
      });
      try {
        const hypervisor = await connection.hypervisor();
        // A domain of the same name left by an earlier, crashed attempt of this agent.
        await destroyDomain(hypervisor, name);
        await hypervisor.domainCreateXML(xml);
        domainCreated = true;
      } catch (err) {
        const log = await qemuLogTail();
        await closeSockets();
        throw new Error(`cannot start the VM of image "${image.name}": ${errorMessage(err)}${log !== "" ? `\n${log}` : ""}`, {
          cause: err,
        });
      }
      started = true;
      input.logger.debug({ domain: name, image: image.name, ...limits }, "domain started");
      waited = awaitEnd();
      if (cancelled) void killDomain();
    },

    async wait(): Promise<ExecutorResult> {
      if (!waited || !started)
        return { exitCode: null, error: cancelled ? "cancelled before the script started" : "the script was not started" };
      const result = await waited;
      outputOpen = false;
      return result;
    },

    async collect(): Promise<ExecutorCollection> {
      if (!status) {
        try {
          if ((await stat(artefactDir)).isDirectory()) return { artefactDir };
        } catch {
          // No artefact directory.
        }
        return {};
      }
      if (status.artefacts === "missing") {
        await rm(artefactDir, { recursive: true, force: true });
        return {};
      }
      if (status.artefacts === "failed")
        throw new Error(
          `artefact_path: the guest could not write its artefacts to the output disk (at most ${options.outputDiskBytes ?? 8 * 1024 ** 3} bytes)`,
        );
      await rm(artefactDir, { recursive: true, force: true });
      await mkdir(artefactDir, { recursive: true });
      try {
        await extractTar(createReadStream(outputDisk, { start: STATUS_BLOCK_BYTES, highWaterMark: 1 << 20 }), artefactDir);
      } catch (err) {
        throw new Error(`artefact_path: cannot read the guest's artefacts: ${errorMessage(err)}`, { cause: err });
      }
      return { artefactDir };
    },

    cancel(): void {
      if (cancelled) return;
      cancelled = true;
      if (checkoutProcess?.running) checkoutProcess.terminate(0);
      if (domainCreated) void killDomain();
    },

    destroy(): Promise<void> {
      destroyed ??= (async () => {
        cancelled = true;
        if (checkoutProcess) {
          checkoutProcess.kill();
          await checkoutProcess.done;
        }
        if (domainCreated) {
          await killDomain();
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([waited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
          clearTimeout(timer);
        }
        outputOpen = false;
        await closeSockets();
        if (qemuLogDir !== undefined && domainCreated) await rm(join(qemuLogDir, `${name}.log`), { force: true });
        await rm(scratch, { recursive: true, force: true, maxRetries: 3 });
        await rm(socketDir, { recursive: true, force: true });
        await rm(workspace, { recursive: true, force: true, maxRetries: 3 });
        await removeCheckoutKey(keyFile);
      })();
      return destroyed;
    },
  };
}
