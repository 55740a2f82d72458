import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
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
import { deferred, withTimeout, type Deferred } from "./waiting.js";

/** The image scripts/ci/build-test-images.sh builds. */
export const DOCKER_BENCH_IMAGE = "mottainai-test/busybox:latest";

const TASK_TIMEOUT_MS = 60_000;
const AGENT_NAME = "bench-docker";

/** Wall-clock now in ms with sub-millisecond precision (comparable with other processes' Date.now()). */
const wallNow = (): number => performance.timeOrigin + performance.now();

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

async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const kill = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(kill);
}

/** One `docker run --rm --network none IMAGE true`, timed from spawn to exit (ms). */
async function timeDockerRun(name: string): Promise<{ ms: number; start: number; end: number }> {
  const start = wallNow();
  const t0 = performance.now();
  await dockerCli(["run", "--rm", "--network", "none", "--name", name, DOCKER_BENCH_IMAGE, "true"], TASK_TIMEOUT_MS);
  const ms = performance.now() - t0;
  return { ms, start, end: start + ms };
}

/** The real mottainai-agent with the docker executor; its JSON log lines (stderr) are kept. */
interface AgentProcess {
  readonly lines: Record<string, unknown>[];
  readonly exited: Promise<string>;
  tail(): string;
  stop(): Promise<void>;
}

function startAgent(serverUrl: string, registrationToken: string, stateDir: string): AgentProcess {
  const args = [
    join(ROOT, "agent/dist/main.js"),
    "--server",
    serverUrl,
    "--registration-token",
    registrationToken,
    "--name",
    AGENT_NAME,
    "--state-dir",
    stateDir,
    "--executor",
    "docker",
    "--capacity",
    "1",
  ];
  const dockerHost = process.env.DOCKER_HOST;
  if (dockerHost) args.push("--docker-host", dockerHost);
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

/** Per task: the times (epoch ms) the breakdown is made of. */
interface TaskTimes {
  id: string;
  callStart: number;
  created: number;
  assigned: number;
  running: number;
  finished: number;
  received: number;
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
  const subscription = new AbortController();
  let agent: AgentProcess | undefined;
  try {
    // One event stream for the whole run: node.connected tells that the agent is ready; the
    // task.* events carry the server's times of each step.
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

    const secret = await createRegistrationSecret(api, "bench docker");
    const started = startAgent(server.url, secret, stateDir);
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
        spec: { name: `docker-${i}`, type: "docker", image: DOCKER_BENCH_IMAGE, script: ["true"] },
      });
      const id = task?.id ?? "";
      const done = deferred<Event>();
      const already = early.get(id);
      if (already) done.resolve(already);
      else waiters.set(id, done);
      const finished = await withTimeout(
        Promise.race([done.promise, agentDied, streamFailed]),
        TASK_TIMEOUT_MS,
        `task ${i} (${id}) to finish`,
      );
      const ms = performance.now() - t0;
      const received = callStart + ms;
      waiters.delete(id);
      early.delete(id);
      const value = finished.payload.case === "task" ? finished.payload.value : undefined;
      if (value?.result !== TaskResult.SUCCESS) {
        throw new Error(
          `task ${i} (${id}) did not succeed: result ${TaskResult[value?.result ?? 0]}, error "${value?.error ?? ""}"\n${started.tail()}`,
        );
      }
      const st = serverTimes.get(id) ?? new Map<string, number>();
      const created = value.createTime ? Number(value.createTime.seconds) * 1000 + value.createTime.nanos / 1e6 : Number.NaN;
      return {
        ms,
        times: {
          id,
          callStart,
          created: st.get("task.created") ?? created,
          assigned: st.get("task.assigned") ?? Number.NaN,
          running: st.get("task.running") ?? Number.NaN,
          finished: st.get("task.finished") ?? Number.NaN,
          received,
        },
      };
    };

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
      breakdown(taskTimes, started.lines, dockerEvents.byKey),
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
    subscription.abort();
    await agent?.stop();
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
function breakdown(tasks: TaskTimes[], agentLines: Record<string, unknown>[], engine: Map<string, ContainerEvent[]>): string {
  const agentTime = (id: string, msg: string): number => {
    const line = agentLines.find((l) => l.taskId === id && l.msg === msg);
    return typeof line?.time === "number" ? line.time : Number.NaN;
  };
  const steps: [string, number[]][] = [
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
    const got = agentTime(t.id, "assigned");
    const ended = agentTime(t.id, "attempt ended");
    const create = firstEvent(ev, "create");
    const start = firstEvent(ev, "start");
    const die = firstEvent(ev, "die");
    const destroy = firstEvent(ev, "destroy");
    const points = [t.callStart, t.created, t.assigned, got, create, start, die, destroy, ended, t.finished, t.received];
    for (let k = 0; k + 1 < points.length; k++) steps[k]?.[1].push((points[k + 1] ?? Number.NaN) - (points[k] ?? Number.NaN));
    steps[10]?.[1].push(t.running - start);
  }
  const parts = steps.map(([label, values]) => {
    const ok = values.filter(Number.isFinite);
    return `${label} ${ok.length > 0 ? fmt(median(ok)) : "n/a"}`;
  });
  return `docker task breakdown (medians in ms, wall clocks of the bench, server, agent and engine on this machine): ${parts.join("; ")}.`;
}

/** Medians of each step of the baseline containers, from engine events. */
function baselineBreakdown(runs: { name: string; start: number; end: number }[], engine: Map<string, ContainerEvent[]>): string {
  const steps: [string, number[]][] = [
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
    for (let k = 0; k + 1 < points.length; k++) steps[k]?.[1].push((points[k + 1] ?? Number.NaN) - (points[k] ?? Number.NaN));
  }
  const parts = steps.map(([label, values]) => {
    const ok = values.filter(Number.isFinite);
    return `${label} ${ok.length > 0 ? fmt(median(ok)) : "n/a"}`;
  });
  return `docker run baseline breakdown (medians in ms, engine events): ${parts.join("; ")}.`;
}
