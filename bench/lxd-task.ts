import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
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

/** The image scripts/ci/start-lxd.sh imports. */
export const LXD_BENCH_IMAGE = "mottainai-test-busybox";
const TASK_TIMEOUT_MS = 60_000;
const AGENT_NAME = "bench-lxd";

function lxc(args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    // `lxc launch` reads an instance config from a stdin that is not a terminal: give it an empty one.
    const child = execFile("lxc", args, { timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) {
        const why =
          (err as NodeJS.ErrnoException).code === "ENOENT" ? "the lxc CLI is not installed" : stderr.trim() || err.message;
        reject(new Error(`lxc ${args.join(" ")}: ${why}`));
      } else resolve(stdout);
    });
    child.stdin?.end();
  });
}

/** Why the benchmark cannot run here, or undefined. */
async function lxdProblem(): Promise<string | undefined> {
  try {
    await lxc(["info"], 10_000);
  } catch (err) {
    return `no LXD (${(err as Error).message.split("\n")[0]}); start it with scripts/ci/start-lxd.sh`;
  }
  try {
    await lxc(["image", "info", LXD_BENCH_IMAGE], 10_000);
  } catch {
    return `no image ${LXD_BENCH_IMAGE} on LXD; import it with scripts/ci/start-lxd.sh`;
  }
  return undefined;
}

/** The baseline: `lxc launch IMAGE NAME`, `lxc exec NAME -- true`, `lxc delete --force NAME`, spawn of the first to exit of the last. */
async function timeLxcRun(name: string): Promise<number> {
  const t0 = performance.now();
  await lxc(["launch", LXD_BENCH_IMAGE, name, "--quiet"]);
  await lxc(["exec", name, "--", "true"]);
  await lxc(["delete", "--force", name]);
  return performance.now() - t0;
}

function fmt(ms: number): string {
  return Number.isFinite(ms) ? ms.toFixed(0) : "n/a";
}

/**
 * LXD task created → done: a real mottainai-server and mottainai-agent (`--executor lxd
 * --capacity 1`) on this machine's LXD; options.lxdTasks sequential tasks `{type: lxd, image:
 * mottainai-test-busybox, script: ["true"]}` awaited through one EventService.Subscribe stream.
 * Baseline, interleaved in the same run: `lxc launch` + `lxc exec -- true` + `lxc delete --force`
 * of the same image (timeLxcRun). One warm-up of each is not counted. Without LXD the benchmark
 * throws when named in --only, and is skipped with a note in the default run.
 */
export async function runLxdTask(options: BenchOptions): Promise<BenchResult> {
  const problem = await lxdProblem();
  if (problem !== undefined) {
    if (options.onlyGiven) throw new Error(`lxd task benchmark: ${problem}`);
    return { rows: [], notes: [`lxd task: skipped: ${problem}`] };
  }
  const server = await startMottainaiServer({ nodeFlags: options.serverNodeFlags });
  const api = createApi(server.url, server.adminToken);
  const stateDir = mkdtempSync(join(tmpdir(), "mottainai-bench-lxd-"));
  const removeStateDir = deferCleanup(() => rmSync(stateDir, { recursive: true, force: true }));
  let timer: TaskTimer | undefined;
  try {
    timer = await startTaskTimer({
      api,
      serverUrl: server.url,
      agentName: AGENT_NAME,
      registrationDescription: "bench lxd",
      agentArgs: ["--state-dir", stateDir, "--executor", "lxd", "--capacity", "1", "--log-level", "debug"],
      taskTimeoutMs: TASK_TIMEOUT_MS,
    });
    const { agent, runTask: runSpec } = timer;
    const runTask = (i: number) => runSpec({ name: `lxd-${i}`, type: "lxd", image: LXD_BENCH_IMAGE, script: ["true"] }, i);

    await timeLxcRun(`mottainai-bench-lxc-${process.pid}-warmup`);
    await runTask(-1);
    const taskMs: number[] = [];
    const baselineMs: number[] = [];
    const times: TaskTimes[] = [];
    for (let i = 0; i < options.lxdTasks; i++) {
      baselineMs.push(await timeLxcRun(`mottainai-bench-lxc-${process.pid}-${i}`));
      const t = await runTask(i);
      taskMs.push(t.ms);
      times.push(t.times);
    }

    const steps: Step[] = [
      ["CreateTask→assigned (server)", []],
      ["assigned→container created (agent: workspace, image lookup, POST /1.0/instances)", []],
      ["created→ready (start, workspace tar in through exec)", []],
      ["ready→script ended (exec of the script)", []],
      ["script ended→attempt ended (artefact tar out, force stop, delete, workspace removed)", []],
      ["attempt ended→task.finished received", []],
    ];
    for (const t of times) {
      addStepDurations(steps, [
        t.callStart,
        t.assigned,
        agent.logTime(t.id, "container created"),
        agent.logTime(t.id, "container ready"),
        agent.logTime(t.id, "script ended"),
        agent.logTime(t.id, "attempt ended"),
        t.received,
      ]);
    }
    const row = benchRow("lxd task created→done (median)", median(taskMs), "ms", { op: "<=", target: 1.5 }, median(baselineMs));
    return {
      rows: [{ ...row, goal: "ratio <= 1.5", met: row.ratio <= 1.5 }],
      notes: [
        `lxd task: ${options.lxdTasks} sequential tasks {type: lxd, image: ${LXD_BENCH_IMAGE}, script: ["true"]} ` +
          `(after 1 warm-up) on a real mottainai-agent (--executor lxd --capacity 1), dir pool; p90 ${fmt(quantile(taskMs, 0.9))} ms. ` +
          `Baseline = median of \`lxc launch\` + \`lxc exec -- true\` + \`lxc delete --force\` of the same image, ` +
          `spawn of the first to exit of the last, interleaved (p90 ${fmt(quantile(baselineMs, 0.9))} ms).`,
        `lxd task breakdown (medians in ms): ${formatStepMedians(steps, fmt)}.`,
      ],
    };
  } finally {
    await timer?.close();
    api.close();
    await server.stop();
    await removeStateDir();
  }
}
