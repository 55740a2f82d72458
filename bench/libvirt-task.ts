import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createApi } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { deferCleanup } from "./cleanup.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { benchRow, type BenchResult } from "./report.js";
import { median, quantile } from "./stats.js";
import { addStepDurations, formatStepMedians, type Step } from "./step-breakdown.js";
import { startTaskTimer, type TaskTimer, type TaskTimes } from "./task-timing.js";
import { sleep } from "./waiting.js";

/** Where scripts/ci/build-libvirt-image.sh puts the VM test images, and the boot-pair image. */
export const LIBVIRT_BENCH_IMAGE_DIR = "/var/lib/mottainai-test/libvirt-images";
export const LIBVIRT_BENCH_IMAGE = "busybox";
const URI = "qemu:///system";
const TASK_TIMEOUT_MS = 120_000;
const AGENT_NAME = "bench-libvirt";

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
  let timer: TaskTimer | undefined;
  try {
    timer = await startTaskTimer({
      api,
      serverUrl: server.url,
      agentName: AGENT_NAME,
      registrationDescription: "bench libvirt",
      agentArgs: [
        ...["--state-dir", stateDir, "--executor", "libvirt", "--capacity", "1", "--log-level", "debug"],
        ...["--libvirt-image-dir", LIBVIRT_BENCH_IMAGE_DIR, "--libvirt-uri", URI],
      ],
      taskTimeoutMs: TASK_TIMEOUT_MS,
    });
    const { agent, runTask: runSpec } = timer;
    const runTask = (i: number) =>
      runSpec({ name: `libvirt-${i}`, type: "libvirt_execute", image: LIBVIRT_BENCH_IMAGE, script: ["echo hi"] }, i);

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

    const steps: Step[] = [
      ["CreateTask→assigned (server)", []],
      ["assigned→domain created (agent: workspace, input tar, sparse output disk, sockets, virDomainCreateXML)", []],
      ["domain created→attempt ended (boot, runner, echo, artefact tar, trailer, reboot, domain gone, cleanup)", []],
      ["attempt ended→task.finished received", []],
    ];
    for (const t of times) {
      addStepDurations(steps, [
        t.callStart,
        t.assigned,
        agent.logTime(t.id, "domain started"),
        agent.logTime(t.id, "attempt ended"),
        t.received,
      ]);
    }
    const row = benchRow("libvirt task created→done (median)", median(taskMs), "ms", { op: "<=", target: 2 }, median(bareMs));
    return {
      rows: [{ ...row, goal: "ratio <= 2", met: row.ratio <= 2 }],
      notes: [
        `libvirt task: ${options.libvirtTasks} sequential tasks {type: libvirt_execute, image: ${LIBVIRT_BENCH_IMAGE}, script: ["echo hi"]} ` +
          `(after 1 warm-up) on a real mottainai-agent (--executor libvirt --capacity 1), TCG; p90 ${fmt(quantile(taskMs, 0.9))} ms. ` +
          `Baseline = median of the same kernel and initramfs booted by \`virsh create\` straight into \`reboot -f\` ` +
          `(rdinit), spawn to domain gone, interleaved (p90 ${fmt(quantile(bareMs, 0.9))} ms).`,
        `libvirt task breakdown (medians in ms): ${formatStepMedians(steps, fmt)}.`,
      ],
    };
  } finally {
    await timer?.close();
    api.close();
    await server.stop();
    await removeStateDir();
  }
}
