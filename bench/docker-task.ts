import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { stopProcess, type AgentProcess } from "./agent-process.js";
import { createApi } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { parseJsonLine } from "./child-process.js";
import { deferCleanup } from "./cleanup.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { benchRow, type BenchResult } from "./report.js";
import { median, quantile } from "./stats.js";
import { addStepDurations, formatStepMedians, type Step } from "./step-breakdown.js";
import { startTaskTimer, wallNow, type TaskTimer, type TaskTimes } from "./task-timing.js";

/** The image scripts/ci/build-test-images.sh builds. */
export const DOCKER_BENCH_IMAGE = "mottainai-test/busybox:latest";

const TASK_TIMEOUT_MS = 60_000;
const AGENT_NAME = "bench-docker";

/** Runs `docker ARGS` and resolves with its stdout; rejects (never hangs) after timeoutMs. */
function dockerCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("docker", args, { timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) {
        const why =
          (err as NodeJS.ErrnoException).code === "ENOENT" ? "the docker CLI is not installed" : stderr.trim() || err.message;
        reject(new Error(`docker ${args.join(" ")}: ${why}`));
      } else resolve(stdout);
    });
  });
}

/** Why no benchmark can run against the local engine, or undefined when it answers and has the image. */
async function dockerProblem(): Promise<string | undefined> {
  try {
    await dockerCli(["info", "--format", "{{.ServerVersion}}"], 10_000);
  } catch (err) {
    return `no docker engine (${(err as Error).message.split("\n")[0]}); start one with scripts/ci/start-dockerd.sh`;
  }
  try {
    await dockerCli(["image", "inspect", "--format", "{{.Id}}", DOCKER_BENCH_IMAGE], 10_000);
  } catch {
    return `no image ${DOCKER_BENCH_IMAGE} on the docker engine; build it with scripts/ci/build-test-images.sh`;
  }
  return undefined;
}

/** A container event of `docker events`: action and time in epoch ms. */
interface ContainerEvent {
  action: string;
  at: number;
}

/**
 * Follows `docker events` for containers, keyed by container name (baseline) and by the
 * mottainai.task label (tasks). Only used for the breakdown; the engine emits these anyway.
 */
function followDockerEvents(): { byKey: Map<string, ContainerEvent[]>; stop: () => Promise<void> } {
  const byKey = new Map<string, ContainerEvent[]>();
  const child = spawn("docker", ["events", "--filter", "type=container", "--format", "{{json .}}"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  child.on("error", () => undefined);
  createInterface({ input: child.stdout }).on("line", (line) => {
    const e = parseJsonLine(line) as
      { Action?: string; timeNano?: number; Actor?: { Attributes?: Record<string, string> } } | undefined;
    if (!e?.Action || typeof e.timeNano !== "number") return;
    const attrs = e.Actor?.Attributes ?? {};
    const key = attrs["mottainai.task"] ?? attrs.name;
    if (key === undefined) return;
    const list = byKey.get(key) ?? [];
    list.push({ action: e.Action.split(":")[0] ?? e.Action, at: e.timeNano / 1e6 });
    byKey.set(key, list);
  });
  const stop = deferCleanup(() => stopProcess(child, 2000));
  return { byKey, stop };
}

/** One `docker run --rm --network none IMAGE true`, timed from spawn to exit (ms). */
async function timeDockerRun(name: string): Promise<{ ms: number; start: number; end: number }> {
  const start = wallNow();
  const t0 = performance.now();
  await dockerCli(["run", "--rm", "--network", "none", "--name", name, DOCKER_BENCH_IMAGE, "true"], TASK_TIMEOUT_MS);
  const ms = performance.now() - t0;
  return { ms, start, end: start + ms };
}

/**
 * Docker task created → done: a real mottainai-server and a real mottainai-agent
 * (`--executor docker --capacity 1`) on this machine's engine; options.dockerTasks sequential
 * tasks `{type: "docker", image: busybox, script: ["true"]}`, each created with CreateTask and
 * awaited through one EventService.Subscribe stream (task.finished, pushed by the server: no
 * polling). Time from calling CreateTask to receiving task.finished. Baseline, interleaved in
 * the same run: `docker run --rm --network none IMAGE true` from spawn to exit. One warm-up of
 * each is not counted. Without an engine the benchmark throws when asked for by name (--only),
 * and is skipped with a note in the default run.
 */
export async function runDockerTask(options: BenchOptions): Promise<BenchResult> {
  const problem = await dockerProblem();
  if (problem !== undefined) {
    if (options.onlyGiven) throw new Error(`docker task benchmark: ${problem}`);
    return { rows: [], notes: [`docker task: skipped: ${problem}`] };
  }

  const dockerEvents = followDockerEvents();
  const server = await startMottainaiServer({ nodeFlags: options.serverNodeFlags });
  const api = createApi(server.url, server.adminToken);
  const stateDir = mkdtempSync(join(tmpdir(), "mottainai-bench-agent-"));
  const removeStateDir = deferCleanup(() => rmSync(stateDir, { recursive: true, force: true }));
  let timer: TaskTimer | undefined;
  try {
    const dockerHost = process.env.DOCKER_HOST;
    timer = await startTaskTimer({
      api,
      serverUrl: server.url,
      agentName: AGENT_NAME,
      registrationDescription: "bench docker",
      agentArgs: [
        ...["--state-dir", stateDir, "--executor", "docker", "--capacity", "1"],
        ...(dockerHost ? ["--docker-host", dockerHost] : []),
      ],
      taskTimeoutMs: TASK_TIMEOUT_MS,
    });
    const { agent, runTask: runSpec } = timer;
    const runTask = (i: number) =>
      runSpec({ name: `docker-${i}`, type: "docker", image: DOCKER_BENCH_IMAGE, script: ["true"] }, i);

    // Warm-up (not counted), then interleaved: a baseline container, then a task.
    await timeDockerRun("mottainai-bench-baseline-warmup");
    await runTask(-1);
    const taskMs: number[] = [];
    const baselineMs: number[] = [];
    const taskTimes: TaskTimes[] = [];
    const baselineNames: { name: string; start: number; end: number }[] = [];
    for (let i = 0; i < options.dockerTasks; i++) {
      const name = `mottainai-bench-baseline-${process.pid}-${i}`;
      const run = await timeDockerRun(name);
      baselineMs.push(run.ms);
      baselineNames.push({ name, start: run.start, end: run.end });
      const t = await runTask(i);
      taskMs.push(t.ms);
      taskTimes.push(t.times);
    }

    const notes = [
      `docker task: ${options.dockerTasks} sequential tasks {type: docker, image: ${DOCKER_BENCH_IMAGE}, script: ["true"]} ` +
        `(after 1 warm-up) on a real mottainai-agent (--executor docker --capacity 1); created→done = CreateTask call to ` +
        `task.finished received on one EventService.Subscribe stream; p90 ${fmt(quantile(taskMs, 0.9))} ms, ` +
        `min ${fmt(Math.min(...taskMs))}, max ${fmt(Math.max(...taskMs))}. Baseline = median of \`docker run --rm --network none ` +
        `${DOCKER_BENCH_IMAGE} true\` from spawn to exit, interleaved with the tasks (p90 ${fmt(quantile(baselineMs, 0.9))} ms).`,
      breakdown(taskTimes, agent, dockerEvents.byKey),
      baselineBreakdown(baselineNames, dockerEvents.byKey),
    ];
    const row = benchRow(
      "docker task created→done (median)",
      median(taskMs),
      "ms",
      { op: "<=", target: 1.5 },
      median(baselineMs),
    );
    return {
      rows: [{ ...row, goal: "ratio <= 1.5", met: row.ratio <= 1.5 }],
      notes,
    };
  } finally {
    await timer?.close();
    api.close();
    await server.stop();
    await dockerEvents.stop();
    await removeStateDir();
  }
}

function fmt(ms: number): string {
  return Number.isFinite(ms) ? ms.toFixed(1) : "n/a";
}

function firstEvent(events: ContainerEvent[] | undefined, action: string): number {
  return events?.find((e) => e.action === action)?.at ?? Number.NaN;
}

/** Medians of each step of the tasks, from server events, agent log lines and engine events. */
function breakdown(tasks: TaskTimes[], agent: AgentProcess, engine: Map<string, ContainerEvent[]>): string {
  const steps: Step[] = [
    ["CreateTask call→task.created", []],
    ["created→assigned (server)", []],
    ["assigned→agent has it", []],
    ["agent has it→container created (prepare: workspace, image inspect, create)", []],
    ["container create→start (attach, start)", []],
    ["start→die (true runs)", []],
    ["die→destroy (wait returns, collect, remove)", []],
    ["destroy→agent attempt ended (workspace removed)", []],
    ["attempt ended→task.finished (finished message, server commit)", []],
    ["task.finished→received by the bench", []],
    ["(server: task.running − container start)", []],
  ];
  for (const t of tasks) {
    const ev = engine.get(t.id);
    const got = agent.logTime(t.id, "assigned");
    const ended = agent.logTime(t.id, "attempt ended");
    const create = firstEvent(ev, "create");
    const start = firstEvent(ev, "start");
    const die = firstEvent(ev, "die");
    const destroy = firstEvent(ev, "destroy");
    const points = [t.callStart, t.created, t.assigned, got, create, start, die, destroy, ended, t.finished, t.received];
    addStepDurations(steps, points);
    steps[10]?.[1].push(t.running - start);
  }
  return `docker task breakdown (medians in ms, wall clocks of the bench, server, agent and engine on this machine): ${formatStepMedians(steps, fmt)}.`;
}

/** Medians of each step of the baseline containers, from engine events. */
function baselineBreakdown(runs: { name: string; start: number; end: number }[], engine: Map<string, ContainerEvent[]>): string {
  const steps: Step[] = [
    ["spawn→create", []],
    ["create→start", []],
    ["start→die", []],
    ["die→destroy", []],
    ["destroy→CLI exit", []],
  ];
  for (const r of runs) {
    const ev = engine.get(r.name);
    const points = [
      r.start,
      firstEvent(ev, "create"),
      firstEvent(ev, "start"),
      firstEvent(ev, "die"),
      firstEvent(ev, "destroy"),
      r.end,
    ];
    addStepDurations(steps, points);
  }
  return `docker run baseline breakdown (medians in ms, engine events): ${formatStepMedians(steps, fmt)}.`;
}
