import { performance } from "node:perf_hooks";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { TaskResult, type Event, type TaskSpecSchema } from "@mottainai/proto";
import { startAgentProcess, type AgentProcess } from "./agent-process.js";
import { createRegistrationSecret, type Api } from "./api-clients.js";
import { deferred, withTimeout, type Deferred } from "./waiting.js";

/** Wall-clock now in ms with sub-millisecond precision (comparable with other processes' Date.now()). */
export const wallNow = (): number => performance.timeOrigin + performance.now();

/** How long startTaskTimer waits for node.connected of the agent. */
const CONNECT_TIMEOUT_MS = 30_000;

/** Options of startTaskTimer. */
export interface TaskTimerOptions {
  /** Admin clients of the server under test; the caller closes them after TaskTimer.close(). */
  api: Api;
  /** URL the agent connects to. */
  serverUrl: string;
  /** --name of the agent: its node.connected event tells that it is ready. */
  agentName: string;
  /** Description of the registration token created for the agent. */
  registrationDescription: string;
  /** Agent flags after --server, --registration-token and --name (state dir, executor, capacity, …). */
  agentArgs: readonly string[];
  /** How long runTask waits for task.finished. */
  taskTimeoutMs: number;
}

/** The times (epoch ms) of one timed task that the breakdowns are made of; NaN where an event is missing. */
export interface TaskTimes {
  id: string;
  /** Wall clock of the bench when CreateTask was called. */
  callStart: number;
  /** Server time of task.created (else the task's create_time). */
  created: number;
  /** Server time of task.assigned. */
  assigned: number;
  /** Server time of task.running. */
  running: number;
  /** Server time of task.finished. */
  finished: number;
  /** Wall clock of the bench when task.finished arrived (callStart + the measured ms). */
  received: number;
}

/** A real agent connected to the server, and one event stream to time tasks on it. */
export interface TaskTimer {
  /** The agent; its log lines feed the breakdowns. */
  readonly agent: AgentProcess;
  /**
   * Creates a task with spec and resolves when its task.finished has arrived on the stream: ms is
   * CreateTask call to task.finished received (performance.now). Rejects when the task did not
   * succeed, when the agent exits or the stream ends meanwhile, or after taskTimeoutMs; the
   * errors name the task as `task INDEX`. One task at a time is what the benchmarks do, though
   * concurrent calls work.
   */
  runTask(spec: MessageInitShape<typeof TaskSpecSchema>, index: number): Promise<{ ms: number; times: TaskTimes }>;
  /** Ends the event stream and stops the agent; resolves when it is gone. */
  close(): Promise<void>;
}

const eventMs = (e: Event): number => (e.time ? Number(e.time.seconds) * 1000 + e.time.nanos / 1e6 : Number.NaN);

/**
 * Subscribes to task.* and node.connected first (so no event of the agent or of a task is
 * missed), then registers and starts the agent with the options' flags and resolves once it is
 * connected. On failure everything started is stopped before the promise rejects. The server
 * time of the first event of each type is kept per task for TaskTimes.
 */
export async function startTaskTimer(options: TaskTimerOptions): Promise<TaskTimer> {
  const { api, agentName } = options;
  const subscription = new AbortController();
  const nodeConnected: Deferred<void> = deferred();
  const waiters = new Map<string, Deferred<Event>>();
  const serverTimes = new Map<string, Map<string, number>>();
  const early = new Map<string, Event>();
  const stream = (async () => {
    for await (const { event } of api.events.subscribe({ types: ["task.", "node.connected"] }, { signal: subscription.signal })) {
      if (!event) continue;
      if (event.type === "node.connected") {
        if (event.payload.case === "node" && event.payload.value.name === agentName) nodeConnected.resolve();
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

  let agent: AgentProcess | undefined;
  const close = async (): Promise<void> => {
    subscription.abort();
    await agent?.stop();
  };
  try {
    const secret = await createRegistrationSecret(api, options.registrationDescription);
    const started = startAgentProcess([
      ...["--server", options.serverUrl, "--registration-token", secret, "--name", agentName],
      ...options.agentArgs,
    ]);
    agent = started;
    const agentDied = started.exited.then((how) => {
      throw new Error(`mottainai-agent exited (${how}) during the benchmark\n${started.tail()}`);
    });
    agentDied.catch(() => undefined);
    await withTimeout(Promise.race([nodeConnected.promise, agentDied, streamFailed]), CONNECT_TIMEOUT_MS, "the agent to connect");

    const runTask = async (spec: MessageInitShape<typeof TaskSpecSchema>, index: number) => {
      const callStart = wallNow();
      const t0 = performance.now();
      const { task } = await api.tasks.createTask({ spec });
      const id = task?.id ?? "";
      const done = deferred<Event>();
      const already = early.get(id);
      if (already) done.resolve(already);
      else waiters.set(id, done);
      const finished = await withTimeout(
        Promise.race([done.promise, agentDied, streamFailed]),
        options.taskTimeoutMs,
        `task ${index} (${id}) to finish`,
      );
      const ms = performance.now() - t0;
      waiters.delete(id);
      early.delete(id);
      const value = finished.payload.case === "task" ? finished.payload.value : undefined;
      if (value?.result !== TaskResult.SUCCESS) {
        throw new Error(
          `task ${index} (${id}) did not succeed: result ${TaskResult[value?.result ?? 0]}, error "${value?.error ?? ""}"\n${started.tail()}`,
        );
      }
      const st = serverTimes.get(id) ?? new Map<string, number>();
      const created = value.createTime ? Number(value.createTime.seconds) * 1000 + value.createTime.nanos / 1e6 : Number.NaN;
      const times: TaskTimes = {
        id,
        callStart,
        created: st.get("task.created") ?? created,
        assigned: st.get("task.assigned") ?? Number.NaN,
        running: st.get("task.running") ?? Number.NaN,
        finished: st.get("task.finished") ?? Number.NaN,
        received: callStart + ms,
      };
      return { ms, times };
    };
    return { agent: started, runTask, close };
  } catch (err) {
    await close();
    throw err;
  }
}
