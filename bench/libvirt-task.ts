import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { TaskResult, type Event } from "@mottainai/proto";
import { createApi, createRegistrationSecret } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { parseJsonLine, ROOT } from "./child-process.js";
import { deferCleanup } from "./cleanup.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { benchRow, type BenchResult } from "./report.js";
import { median, quantile } from "./stats.js";
import { deferred, sleep, withTimeout, type Deferred } from "./waiting.js";

/** Where scripts/ci/build-libvirt-image.sh puts the VM test images, and the boot-pair image. */
export const LIBVIRT_BENCH_IMAGE_DIR = "/var/lib/mottainai-test/libvirt-images";
export const LIBVIRT_BENCH_IMAGE = "busybox";
const URI = "qemu:///system";
const TASK_TIMEOUT_MS = 120_000;
const AGENT_NAME = "bench-libvirt";

/** Wall-clock now in ms (comparable with the other processes' Date.now()). */
const wallNow = (): number => performance.timeOrigin + performance.now();

function virsh(args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("virsh", ["-c", URI, ...args], { timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`virsh ${args.join(" ")}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Why the benchmark cannot run here, or undefined. */
async function libvirtProblem(): Promise<string | undefined> {
  try {
    await virsh(["version"], 10_000);
  } catch (err) {
    return `no libvirtd (${(err as Error).message.split("\n")[0]}); start one with scripts/ci/start-libvirtd.sh`;
  }
  if (!existsSync(join(LIBVIRT_BENCH_IMAGE_DIR, LIBVIRT_BENCH_IMAGE, "kernel")))
    return `no image ${LIBVIRT_BENCH_IMAGE_DIR}/${LIBVIRT_BENCH_IMAGE}; build it with scripts/ci/build-libvirt-image.sh`;
  return undefined;
}

/**
 * The baseline: the same kernel and initramfs booted with `virsh create`, with busybox's
 * `reboot -f` as the initramfs's init instead of the guest runner, so the VM boots to user
 * space and ends at once (on_reboot=destroy). Timed from spawning virsh to the domain gone.
 */
async function timeBareBoot(dir: string, name: string): Promise<number> {
  const image = join(LIBVIRT_BENCH_IMAGE_DIR, LIBVIRT_BENCH_IMAGE);
  const xml = join(dir, `${name}.xml`);
  writeFileSync(
    xml,
    [
      `<domain type='qemu'><name>${name}</name><memory unit='MiB'>512</memory><vcpu>1</vcpu>`,
      `<os><type arch='x86_64' machine='pc'>hvm</type><kernel>${image}/kernel</kernel><initrd>${image}/initrd</initrd>`,
      `<cmdline>console=ttyS0 panic=-1 quiet rdinit=/bin/reboot -- -f</cmdline></os>`,
      `<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>`,
      `<devices><controller type='usb' model='none'/><memballoon model='none'/></devices></domain>`,
    ].join(""),
  );
  const t0 = performance.now();
  await virsh(["create", xml]);
  for (;;) {
    const names = await virsh(["list", "--name"]);
    if (!names.split("\n").includes(name)) break;
    if (performance.now() - t0 > TASK_TIMEOUT_MS) {
      await virsh(["destroy", name]).catch(() => undefined);
      throw new Error(`the bare VM ${name} did not end within ${TASK_TIMEOUT_MS} ms`);
    }
    await sleep(20);
  }
  const ms = performance.now() - t0;
  await import("node:fs/promises").then((fs) => fs.rm(`/var/log/libvirt/qemu/${name}.log`, { force: true }));
  return ms;
}

async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const kill = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(kill);
}

interface AgentProcess {
  readonly lines: Record<string, unknown>[];
  readonly exited: Promise<string>;
  tail(): string;
  stop(): Promise<void>;
}

function startAgent(serverUrl: string, registrationToken: string, stateDir: string): AgentProcess {
  const args = [
    join(ROOT, "agent/dist/main.js"),
    ...["--server", serverUrl, "--registration-token", registrationToken, "--name", AGENT_NAME],
    ...["--state-dir", stateDir, "--executor", "libvirt", "--capacity", "1", "--log-level", "debug"],
    ...["--libvirt-image-dir", LIBVIRT_BENCH_IMAGE_DIR, "--libvirt-uri", URI],
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const onLine = (line: string) => {
    raw.push(line);
    if (raw.length > 40) raw.shift();
    const entry = parseJsonLine(line);
    if (entry) lines.push(entry);
  };
  createInterface({ input: child.stdout }).on("line", onLine);
  createInterface({ input: child.stderr }).on("line", onLine);
  const exited = new Promise<string>((resolve) => child.once("exit", (code, signal) => resolve(String(code ?? signal))));
  const stop = deferCleanup(() => stopProcess(child, 10_000));
  return { lines, exited, tail: () => raw.map((l) => `  [mottainai-agent] ${l}`).join("\n"), stop };
}

const eventMs = (e: Event): number => (e.time ? Number(e.time.seconds) * 1000 + e.time.nanos / 1e6 : Number.NaN);

interface TaskTimes {
  id: string;
  callStart: number;
  assigned: number;
  finished: number;
  received: number;
}

function fmt(ms: number): string {
  return Number.isFinite(ms) ? ms.toFixed(0) : "n/a";
}

/**
 * Libvirt task created → done: a real mottainai-server and mottainai-agent (`--executor libvirt
 * --capacity 1`) on this machine's libvirtd; options.libvirtTasks sequential tasks
 * `{type: libvirt_execute, image: busybox, script: ["echo hi"]}` awaited through one
 * EventService.Subscribe stream. Baseline, interleaved in the same run: the same kernel and
 * initramfs booted by `virsh create` straight into `reboot -f` (timeBareBoot). One warm-up of
 * each is not counted. Without libvirtd the benchmark throws when named in --only, and is
 * skipped with a note in the default run.
 */
export async function runLibvirtTask(options: BenchOptions): Promise<BenchResult> {
  const problem = await libvirtProblem();
  if (problem !== undefined) {
    if (options.onlyGiven) throw new Error(`libvirt task benchmark: ${problem}`);
    return { rows: [], notes: [`libvirt task: skipped: ${problem}`] };
  }
  const server = await startMottainaiServer({ nodeFlags: options.serverNodeFlags });
  const api = createApi(server.url, server.adminToken);
  const stateDir = mkdtempSync(join(tmpdir(), "mottainai-bench-libvirt-"));
  const removeStateDir = deferCleanup(() => rmSync(stateDir, { recursive: true, force: true }));
  const subscription = new AbortController();
  let agent: AgentProcess | undefined;
  try {
    const nodeConnected: Deferred<void> = deferred();
    const waiters = new Map<string, Deferred<Event>>();
    const serverTimes = new Map<string, Map<string, number>>();
    const early = new Map<string, Event>();
    const stream = (async () => {
      for await (const { event } of api.events.subscribe(
        { types: ["task.", "node.connected"] },
        { signal: subscription.signal },
      )) {
        if (!event) continue;
        if (event.type === "node.connected") {
          if (event.payload.case === "node" && event.payload.value.name === AGENT_NAME) nodeConnected.resolve();
          continue;
        }
        const times = serverTimes.get(event.subjectId) ?? new Map<string, number>();
        if (!times.has(event.type)) times.set(event.type, eventMs(event));
        serverTimes.set(event.subjectId, times);
        if (event.type === "task.finished") {
          const waiter = waiters.get(event.subjectId);
          if (waiter) waiter.resolve(event);
          else early.set(event.subjectId, event);
        }
      }
    })();
    const streamFailed = stream.then(
      () => {
        throw new Error("the event stream ended");
      },
      (err: unknown) => {
        throw new Error(`the event stream failed: ${(err as Error).message}`);
      },
    );
    streamFailed.catch(() => undefined);

    const started = startAgent(server.url, await createRegistrationSecret(api, "bench libvirt"), stateDir);
    agent = started;
    const agentDied = started.exited.then((how) => {
      throw new Error(`mottainai-agent exited (${how}) during the benchmark\n${started.tail()}`);
    });
    agentDied.catch(() => undefined);
    await withTimeout(Promise.race([nodeConnected.promise, agentDied, streamFailed]), 30_000, "the agent to connect");

    const runTask = async (i: number): Promise<{ ms: number; times: TaskTimes }> => {
      const callStart = wallNow();
      const t0 = performance.now();
      const { task } = await api.tasks.createTask({
        spec: { name: `libvirt-${i}`, type: "libvirt_execute", image: LIBVIRT_BENCH_IMAGE, script: ["echo hi"] },
      });
      const id = task?.id ?? "";
      const done = deferred<Event>();
      const already = early.get(id);
      if (already) done.resolve(already);
      else waiters.set(id, done);
      const finished = await withTimeout(Promise.race([done.promise, agentDied, streamFailed]), TASK_TIMEOUT_MS, `task ${i}`);
      const ms = performance.now() - t0;
      waiters.delete(id);
      early.delete(id);
      const value = finished.payload.case === "task" ? finished.payload.value : undefined;
      if (value?.result !== TaskResult.SUCCESS)
        throw new Error(
          `task ${i} (${id}) did not succeed: ${TaskResult[value?.result ?? 0]} "${value?.error ?? ""}"\n${started.tail()}`,
        );
      const st = serverTimes.get(id) ?? new Map<string, number>();
      return {
        ms,
        times: {
          id,
          callStart,
          assigned: st.get("task.assigned") ?? Number.NaN,
          finished: st.get("task.finished") ?? Number.NaN,
          received: callStart + ms,
        },
      };
    };

    const xmlDir = mkdtempSync(join(tmpdir(), "mottainai-bench-virsh-"));
    const removeXmlDir = deferCleanup(() => rmSync(xmlDir, { recursive: true, force: true }));
    await timeBareBoot(xmlDir, `mottainai-bench-bare-${process.pid}-warmup`);
    await runTask(-1);
    const taskMs: number[] = [];
    const bareMs: number[] = [];
    const times: TaskTimes[] = [];
    for (let i = 0; i < options.libvirtTasks; i++) {
      bareMs.push(await timeBareBoot(xmlDir, `mottainai-bench-bare-${process.pid}-${i}`));
      const t = await runTask(i);
      taskMs.push(t.ms);
      times.push(t.times);
    }
    await removeXmlDir();

    const agentTime = (id: string, msg: string): number => {
      const line = started.lines.find((l) => l.taskId === id && l.msg === msg);
      return typeof line?.time === "number" ? line.time : Number.NaN;
    };
    const steps: [string, number[]][] = [
      ["CreateTask→assigned (server)", []],
      ["assigned→domain created (agent: workspace, input tar, sparse output disk, sockets, virDomainCreateXML)", []],
      ["domain created→attempt ended (boot, runner, echo, artefact tar, trailer, reboot, domain gone, cleanup)", []],
      ["attempt ended→task.finished received", []],
    ];
    for (const t of times) {
      const points = [t.callStart, t.assigned, agentTime(t.id, "domain started"), agentTime(t.id, "attempt ended"), t.received];
      for (let k = 0; k + 1 < points.length; k++) steps[k]?.[1].push((points[k + 1] ?? Number.NaN) - (points[k] ?? Number.NaN));
    }
    const breakdown = steps.map(([label, values]) => {
      const ok = values.filter(Number.isFinite);
      return `${label} ${ok.length > 0 ? fmt(median(ok)) : "n/a"}`;
    });
    const row = benchRow("libvirt task created→done (median)", median(taskMs), "ms", { op: "<=", target: 2 }, median(bareMs));
    return {
      rows: [{ ...row, goal: "ratio <= 2", met: row.ratio <= 2 }],
      notes: [
        `libvirt task: ${options.libvirtTasks} sequential tasks {type: libvirt_execute, image: ${LIBVIRT_BENCH_IMAGE}, script: ["echo hi"]} ` +
          `(after 1 warm-up) on a real mottainai-agent (--executor libvirt --capacity 1), TCG; p90 ${fmt(quantile(taskMs, 0.9))} ms. ` +
          `Baseline = median of the same kernel and initramfs booted by \`virsh create\` straight into \`reboot -f\` ` +
          `(rdinit), spawn to domain gone, interleaved (p90 ${fmt(quantile(bareMs, 0.9))} ms).`,
        `libvirt task breakdown (medians in ms): ${breakdown.join("; ")}.`,
      ],
    };
  } finally {
    subscription.abort();
    await agent?.stop();
    api.close();
    await server.stop();
    await removeStateDir();
  }
}
