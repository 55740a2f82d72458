import { rm } from "node:fs/promises";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationMs, type Duration } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import {
  AgentService,
  AgentHelloSchema,
  AttemptRefSchema,
  CancelReason,
  ConnectRequestSchema,
  executorForTaskType,
  PROTOCOL_VERSION,
  QueueSlotsSchema,
  RunningAttemptSchema,
  TaskResult,
  TaskSpecSchema,
  TaskStatus,
  type AgentHello,
  type AgentWelcome,
  type AttemptRef,
  type CancelAttempt,
  type ConnectRequest,
  type ConnectResponse,
  type LogAck,
  type TaskAssignment,
} from "@mottainai/proto";
import type { Logger } from "pino";
import { createAsyncQueue, type AsyncQueue } from "./async-queue.js";
import { createBackoff, type Backoff, type BackoffOptions } from "./backoff.js";
import { uploadArtefacts } from "./artefact-uploader.js";
import { AgentFatalError } from "./errors.js";
import type { Executor, ExecutorFactory, ExecutorResult } from "./executor/executor.js";
import type { DockerExecutorOptions } from "./executor/docker-executor.js";
import type { LibvirtExecutorOptions } from "./executor/libvirt-executor.js";
import type { LxdExecutorOptions } from "./executor/lxd/index.js";
import { BUILTIN_EXECUTORS, createExecutorFactory } from "./executor/executor-factory.js";
import { DEFAULT_PATH } from "./executor/host-executor.js";
import { createLogBuffer, DEFAULT_LOG_MEMORY_LIMIT, type LogBuffer } from "./log-buffer.js";
import { reapOrphans } from "./orphan-reaper.js";
import { createTaskInputs, hasInputs, releaseReadOnly, type TaskInputs } from "./task-inputs.js";
import { systemTimers, type AgentTimers } from "./timers.js";
import { createServerTransport } from "./transport.js";

/** Unacknowledged log bytes one attempt may have on the wire: 4 MiB. */
export const DEFAULT_MAX_UNACKED_LOG_BYTES = 4 * 1024 * 1024;

/** Options of createAgent. Everything the agent touches comes in through here. */
export interface AgentOptions {
  /**
   * Transport to the server, already carrying the agent's credential. When absent, one is
   * created from `server` and `credential` (gRPC over HTTP/2 with a bearer interceptor) and
   * closed when run() ends.
   */
  transport?: Transport;
  /** Server base URL; `server` or `servers` is required when `transport` is absent. */
  server?: string;
  /**
   * Several servers on one database: the agent connects to the first and, whenever its stream
   * is lost, reconnects (after its backoff) to the next, wrapping around; its running attempts
   * are re-claimed there. Overrides `server`.
   */
  servers?: readonly string[];
  /** Node credential; required when `transport` is absent. */
  credential?: string;
  logger: Logger;
  /**
   * Directory for workspaces (`work/`) and log spill files (`spill/`). When run() starts, the
   * process groups a previous agent recorded in `work/` are killed (reapOrphans), then both
   * directories are cleared.
   */
  stateDir: string;
  /** Host name announced in the hello. */
  hostname: string;
  /** Agent version announced in the hello. Default "0.0.0-dev". */
  agentVersion?: string;
  /** Labels announced in the hello. Default none. */
  labels?: Record<string, string>;
  /** Total concurrent attempts. Default 2. */
  capacity?: number;
  /** Queues and their slots announced in the hello. Default general:<capacity>. */
  queues?: { queue: string; slots: number }[];
  /** Executor kinds announced and accepted. Default host and fake. */
  executors?: string[];
  /** Creates executors. Default the built-in host and fake executors. */
  executorFactory?: ExecutorFactory;
  /** PATH the default host executor gives scripts. Default DEFAULT_PATH. */
  path?: string;
  /** Options of the default docker executor (engine endpoint, agent label). Default the local engine. */
  docker?: DockerExecutorOptions;
  /** Options of the default libvirt executor (image directory, connection). Absent: no libvirt executor. */
  libvirt?: LibvirtExecutorOptions;
  /** Options of the default lxd executor (LXD endpoint, policy). Absent: no lxd executor. */
  lxd?: LxdExecutorOptions;
  /** Timers for heartbeats, flushes, timeouts and delays. Default the Node.js timers. */
  timers?: AgentTimers;
  /** Reconnect delays. Default 200 ms doubling to 10 s with full jitter. */
  backoff?: BackoffOptions;
  /** How long stop() waits for the final reports to be acknowledged. Default 10 s. */
  stopTimeoutMs?: number;
  /** Log bytes per attempt kept in memory before spilling to disk. Default 8 MiB. */
  logMemoryLimit?: number;
  /** Unacknowledged log bytes per attempt on the wire. Default 4 MiB. */
  maxUnackedLogBytes?: number;
}

/**
 * A running mottainai agent: one persistent AgentService.Connect stream to the server
 * (DESIGN §3), reconnecting until stopped, running assigned attempts through executors.
 */
export interface Agent {
  /**
   * Connects and serves until stop() completes. Resolves after a graceful stop; rejects with
   * an AgentFatalError carrying the server's message when the server refuses the agent
   * (protocol mismatch: FailedPrecondition; bad credential: Unauthenticated or
   * PermissionDenied), after cancelling whatever still ran. Call once.
   */
  run(): Promise<void>;
  /**
   * Graceful stop: takes no more work, cancels running attempts (reported as ERROR
   * "stopped: agent shutting down"), waits up to stopTimeoutMs for their reports to be
   * acknowledged, closes the stream and resolves when run() has ended. Idempotent; never
   * rejects.
   */
  stop(): Promise<void>;
}

interface Settings {
  heartbeatMs: number;
  leaseTtlMs: number;
  logFlushMs: number;
  maxChunkBytes: number;
  cancelGraceMs: number;
}

const DEFAULT_SETTINGS: Settings = {
  heartbeatMs: 10_000,
  leaseTtlMs: 30_000,
  logFlushMs: 100,
  maxChunkBytes: 256 * 1024,
  cancelGraceMs: 1000,
};

interface Stop {
  error: string;
  report: boolean;
}

interface Outcome {
  result: TaskResult;
  exitCode?: number;
  error: string;
}

interface Attempt {
  key: string;
  /** spec.timeout in seconds; 0 for none. */
  timeout: number;
  ref: { taskId: string; attempt: number; leaseId: string };
  logger: Logger;
  log: LogBuffer;
  executor?: Executor;
  /** Holds a slot: its executor has not ended yet. */
  occupying: boolean;
  /** The executor ended (successfully or not). */
  ended: boolean;
  stop?: Stop;
  outcome?: Outcome;
  timeoutTimer?: unknown;
  /** TaskFinished was sent on the current stream. */
  finishedSent: boolean;
  /** Offset of the last resend on the current stream, to ignore resends caused by stale chunks. */
  rewoundTo?: number;
  forgotten: boolean;
  done?: Promise<void>;
}

interface Session {
  outgoing: AsyncQueue<ConnectRequest>;
  abort: AbortController;
  welcomed: boolean;
  closingByUs: boolean;
  heartbeatTimer?: unknown;
  closeTimer?: unknown;
}

type RequestMessage = NonNullable<MessageInitShape<typeof ConnectRequestSchema>["message"]>;

const attemptKey = (ref: { taskId: string; attempt: number }): string => `${ref.taskId}#${ref.attempt}`;

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function cancelWords(reason: CancelReason, timeout: number): string {
  switch (reason) {
    case CancelReason.STOP_REQUESTED:
      return "stopped: stop requested";
    case CancelReason.TIMEOUT:
      return timeout > 0 ? `timed out after ${timeout}s` : "stopped: timed out";
    case CancelReason.LEASE_LOST:
      return "stopped: lease lost";
    case CancelReason.DELETED:
      return "stopped: task deleted";
    default:
      return "stopped: cancelled by the server";
  }
}

function durationOr(d: Duration | undefined, fallback: number, min: number): number {
  if (d === undefined) return fallback;
  const ms = durationMs(d);
  return Number.isFinite(ms) && ms >= min ? ms : fallback;
}

class AgentRunner implements Agent {
  private readonly logger: Logger;
  private readonly timers: AgentTimers;
  private readonly backoff: Backoff;
  private readonly capacity: number;
  private readonly executors: string[];
  private readonly factory: ExecutorFactory;
  private readonly attempts = new Map<string, Attempt>();
  private readonly maxUnacked: number;
  private readonly stopTimeoutMs: number;
  private readonly spillDir: string;
  private readonly workDir: string;
  private readonly client: Client<typeof AgentService>;
  /** The agent's transport, also used with a task token per call for artefacts and inputs. */
  private readonly transport: Transport;
  private readonly closeTransport: () => void;
  /** Moves the transport to the next server, returning its URL; undefined with one server. */
  private readonly nextServer: (() => string) | undefined;
  private settings: Settings = { ...DEFAULT_SETTINGS };
  private session: Session | undefined;
  private heartbeatSequence = 0n;
  private flushTimer: unknown;
  private stopping = false;
  private stopDeadlineTimer: unknown;
  private stopDeadlinePassed = false;
  private runPromise: Promise<void> | undefined;
  private wakeSleep: (() => void) | undefined;

  constructor(private readonly options: AgentOptions) {
    this.logger = options.logger;
    this.timers = options.timers ?? systemTimers;
    this.backoff = createBackoff(options.backoff);
    this.capacity = Math.max(1, options.capacity ?? 2);
    this.executors = options.executors ?? [...BUILTIN_EXECUTORS];
    this.factory =
      options.executorFactory ??
      createExecutorFactory({
        path: options.path ?? DEFAULT_PATH,
        docker: options.docker,
        ...(options.libvirt ? { libvirt: options.libvirt } : {}),
        ...(options.lxd ? { lxd: options.lxd } : {}),
      });
    this.maxUnacked = options.maxUnackedLogBytes ?? DEFAULT_MAX_UNACKED_LOG_BYTES;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
    this.spillDir = join(options.stateDir, "spill");
    this.workDir = join(options.stateDir, "work");
    let transport = options.transport;
    let close = (): void => undefined;
    let nextServer: (() => string) | undefined;
    if (!transport) {
      if ((options.server === undefined && !options.servers?.length) || options.credential === undefined) {
        throw new TypeError("createAgent: give either transport, or server (or servers) and credential");
      }
      const created = createServerTransport({
        server: options.server,
        servers: options.servers,
        credential: options.credential,
      });
      transport = created.transport;
      close = created.close;
      if ((options.servers?.length ?? 0) > 1) nextServer = created.next;
    }
    this.nextServer = nextServer;
    this.closeTransport = close;
    this.transport = transport;
    this.client = createClient(AgentService, transport);
  }

  run(): Promise<void> {
    if (this.runPromise) return Promise.reject(new Error("run() may be called only once"));
    this.runPromise = this.loop();
    return this.runPromise;
  }

  async stop(): Promise<void> {
    if (!this.runPromise) {
      this.stopping = true;
      return;
    }
    if (!this.stopping) {
      this.stopping = true;
      this.logger.info({ running: this.occupied() }, "stopping: taking no more work");
      for (const a of this.attempts.values()) {
        if (!a.ended) this.stopAttempt(a, { error: "stopped: agent shutting down", report: true });
      }
      this.stopDeadlineTimer = this.timers.setTimeout(() => {
        this.stopDeadlinePassed = true;
        const unreported = [...this.attempts.values()].filter((a) => a.stop?.report !== false).map((a) => a.key);
        if (unreported.length > 0) this.logger.warn({ unreported }, "stop timeout: leaving without the server's acknowledgement");
        if (this.session) this.closeSession(this.session, true);
        this.wake();
      }, this.stopTimeoutMs);
      this.checkStopped();
      this.wake();
    }
    await this.runPromise?.catch(() => undefined);
  }

  private async loop(): Promise<void> {
    const orphans = await reapOrphans(this.workDir);
    if (orphans.length > 0) this.logger.warn({ processGroups: orphans }, "killed process groups a previous agent left running");
    // Storage inputs a previous agent left read-only (or immutable) must be writable to be removed.
    await releaseReadOnly(this.workDir).catch(() => undefined);
    await Promise.all([rm(this.spillDir, { recursive: true, force: true }), rm(this.workDir, { recursive: true, force: true })]);
    try {
      for (;;) {
        if (this.finishedStopping()) break;
        try {
          await this.connectOnce();
        } catch (err) {
          const fatal = this.fatal(err);
          if (fatal) throw fatal;
          const ce = ConnectError.from(err);
          this.logger.warn({ code: Code[ce.code] }, `stream to the server ended: ${ce.rawMessage}`);
        }
        if (this.finishedStopping()) break;
        const delay = this.backoff.next();
        const server = this.nextServer?.();
        this.logger.debug({ delayMs: delay, ...(server ? { server } : {}) }, "reconnecting");
        await this.sleep(delay);
      }
    } catch (err) {
      for (const a of this.attempts.values()) this.stopAttempt(a, { error: "stopped: agent failed", report: false });
      throw err;
    } finally {
      this.stopping = true;
      const pending = [...this.attempts.values()].map((a) => a.done).filter((d) => d !== undefined);
      await Promise.allSettled(pending);
      for (const a of this.attempts.values()) this.forget(a);
      this.timers.clearTimeout(this.flushTimer);
      this.timers.clearTimeout(this.stopDeadlineTimer);
      this.closeTransport();
    }
  }

  private finishedStopping(): boolean {
    return this.stopping && (this.stopDeadlinePassed || this.attempts.size === 0);
  }

  private fatal(err: unknown): AgentFatalError | undefined {
    if (err instanceof AgentFatalError) return err;
    const ce = ConnectError.from(err);
    if (ce.code === Code.FailedPrecondition || ce.code === Code.Unauthenticated || ce.code === Code.PermissionDenied) {
      return new AgentFatalError(ce.rawMessage, ce.code);
    }
    return undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.timers.clearTimeout(handle);
        this.wakeSleep = undefined;
        resolve();
      };
      const handle = this.timers.setTimeout(done, ms);
      this.wakeSleep = done;
    });
  }

  private wake(): void {
    this.wakeSleep?.();
  }

  private async connectOnce(): Promise<void> {
    const session: Session = { outgoing: createAsyncQueue(), abort: new AbortController(), welcomed: false, closingByUs: false };
    this.session = session;
    session.outgoing.push(create(ConnectRequestSchema, { message: { case: "hello", value: this.hello() } }));
    try {
      let first = true;
      for await (const res of this.client.connect(session.outgoing, { signal: session.abort.signal })) {
        if (first) {
          first = false;
          if (res.message.case !== "welcome")
            throw new Error(`the server's first message was ${res.message.case ?? "empty"}, not a welcome`);
          this.onWelcome(session, res.message.value);
          continue;
        }
        this.onMessage(res);
      }
      if (!session.welcomed) throw new Error("the server closed the stream before its welcome");
      if (!session.closingByUs) this.logger.info("the server closed the stream");
    } catch (err) {
      if (session.closingByUs && ConnectError.from(err).code === Code.Canceled) return;
      throw err;
    } finally {
      session.outgoing.close();
      this.timers.clearTimeout(session.heartbeatTimer);
      this.timers.clearTimeout(session.closeTimer);
      if (this.session === session) this.session = undefined;
      session.abort.abort();
    }
  }

  private hello(): AgentHello {
    const running = [...this.attempts.values()]
      .filter((a) => a.stop?.report !== false)
      .map((a) =>
        create(RunningAttemptSchema, {
          ref: create(AttemptRefSchema, a.ref),
          logSize: BigInt(a.log.size),
          finished: a.outcome !== undefined,
        }),
      );
    return create(AgentHelloSchema, {
      protocolVersion: PROTOCOL_VERSION,
      agentVersion: this.options.agentVersion ?? "0.0.0-dev",
      hostname: this.options.hostname,
      labels: this.options.labels ?? {},
      queues: (this.options.queues ?? [{ queue: "general", slots: this.capacity }]).map((q) => create(QueueSlotsSchema, q)),
      executors: this.executors,
      capacity: this.capacity,
      running,
    });
  }

  private onWelcome(session: Session, w: AgentWelcome): void {
    if (w.protocolVersion !== 0 && w.protocolVersion !== PROTOCOL_VERSION) {
      throw new AgentFatalError(
        `protocol version mismatch: this agent speaks ${PROTOCOL_VERSION}, the server ${w.protocolVersion}`,
        Code.FailedPrecondition,
      );
    }
    this.settings = {
      heartbeatMs: durationOr(w.heartbeatInterval, DEFAULT_SETTINGS.heartbeatMs, 1),
      leaseTtlMs: durationOr(w.leaseTtl, DEFAULT_SETTINGS.leaseTtlMs, 1),
      logFlushMs: durationOr(w.logFlushInterval, DEFAULT_SETTINGS.logFlushMs, 1),
      maxChunkBytes: w.maxChunkBytes > 0 ? w.maxChunkBytes : DEFAULT_SETTINGS.maxChunkBytes,
      cancelGraceMs: durationOr(w.cancelGrace, DEFAULT_SETTINGS.cancelGraceMs, 0),
    };
    session.welcomed = true;
    this.backoff.reset();
    this.logger.info(
      {
        nodeId: w.nodeId,
        nodeName: w.nodeName,
        draining: w.draining,
        keep: w.keep.length,
        cancel: w.cancel.length,
        ...this.settings,
      },
      "connected",
    );
    for (const ref of w.cancel) {
      const a = this.attempts.get(attemptKey(ref));
      if (!a) continue;
      a.logger.info("the server no longer holds this attempt: dropping it");
      this.stopAttempt(a, { error: "stopped: lease lost", report: false });
    }
    for (const a of this.attempts.values()) {
      if (a.stop?.report === false) continue;
      a.finishedSent = false;
      a.rewoundTo = undefined;
      a.log.rewind(a.log.acked);
    }
    const free = this.capacity - this.occupied();
    if (!this.stopping && free > 0) this.send({ case: "credit", value: { slots: free } });
    session.heartbeatTimer = this.timers.setTimeout(() => this.heartbeat(session), this.settings.heartbeatMs);
    for (const a of this.attempts.values()) this.pump(a, true);
    this.checkStopped();
  }

  private heartbeat(session: Session): void {
    if (this.session !== session || session.outgoing.closed) return;
    this.heartbeatSequence++;
    this.send({ case: "heartbeat", value: { sequence: this.heartbeatSequence } });
    session.heartbeatTimer = this.timers.setTimeout(() => this.heartbeat(session), this.settings.heartbeatMs);
  }

  private onMessage(res: ConnectResponse): void {
    try {
      const m = res.message;
      switch (m.case) {
        case "assignment":
          this.onAssignment(m.value);
          break;
        case "logAck":
          this.onLogAck(m.value);
          break;
        case "finishAck":
          this.onFinishAck(m.value.ref);
          break;
        case "cancel":
          this.onCancel(m.value);
          break;
        case "drain":
          this.logger.info(
            { draining: m.value.draining },
            m.value.draining ? "node drained: the server sends no more work" : "node resumed",
          );
          break;
        case "welcome":
          this.logger.warn("ignoring a second welcome on the same stream");
          break;
        default:
          this.logger.debug("ignoring an empty or unknown server message");
      }
    } catch (err) {
      this.logger.error({ err }, `handling a ${res.message.case ?? "server"} message failed`);
    }
  }

  private find(ref: AttemptRef | undefined): Attempt | undefined {
    return ref ? this.attempts.get(attemptKey(ref)) : undefined;
  }

  private occupied(): number {
    let n = 0;
    for (const a of this.attempts.values()) if (a.occupying) n++;
    return n;
  }

  private onAssignment(assignment: TaskAssignment): void {
    const ref = assignment.ref;
    if (!ref || ref.taskId === "") {
      this.logger.warn("ignoring an assignment without an attempt reference");
      return;
    }
    const key = attemptKey(ref);
    if (this.attempts.has(key)) {
      this.logger.warn({ taskId: ref.taskId, attempt: ref.attempt }, "ignoring a duplicate assignment");
      return;
    }
    const spec = assignment.spec ?? create(TaskSpecSchema);
    const a: Attempt = {
      key,
      timeout: spec.timeout,
      ref: { taskId: ref.taskId, attempt: ref.attempt, leaseId: ref.leaseId },
      logger: this.logger.child({ taskId: ref.taskId, attempt: ref.attempt }),
      log: createLogBuffer({
        spillDir: this.spillDir,
        name: key,
        memoryLimit: this.options.logMemoryLimit ?? DEFAULT_LOG_MEMORY_LIMIT,
      }),
      occupying: false,
      ended: false,
      finishedSent: false,
      forgotten: false,
    };
    this.attempts.set(key, a);
    a.logger.info({ type: spec.type, name: spec.name, queue: spec.queue }, "assigned");
    if (this.stopping) {
      this.settle(a, { result: TaskResult.ERROR, error: "stopped: agent shutting down" });
      return;
    }
    if (this.occupied() >= this.capacity) {
      a.logger.error({ capacity: this.capacity }, "assignment beyond capacity");
      this.settle(a, { result: TaskResult.ERROR, error: `the agent had no free slot (capacity ${this.capacity})` });
      return;
    }
    a.occupying = true;
    a.done = this.runAttempt(a, assignment).catch((err: unknown) => {
      a.logger.error({ err }, "attempt failed unexpectedly");
    });
  }

  private async runAttempt(a: Attempt, assignment: TaskAssignment): Promise<void> {
    const spec = assignment.spec ?? create(TaskSpecSchema);
    if (spec.timeout > 0) {
      a.timeoutTimer = this.timers.setTimeout(
        () => this.stopAttempt(a, { error: `timed out after ${spec.timeout}s`, report: true }),
        spec.timeout * 1000,
      );
    }
    let failure: string | undefined;
    let result: ExecutorResult | undefined;
    let executor: Executor | undefined;
    const output = (text: string): void => this.onOutput(a, Buffer.from(text));
    const inputs: TaskInputs | undefined = hasInputs(spec)
      ? createTaskInputs({ transport: this.transport, token: assignment.taskToken, spec, output, logger: a.logger })
      : undefined;
    const kind = executorForTaskType(spec.type);
    if (kind !== undefined && this.executors.includes(kind)) {
      try {
        executor = this.factory(kind, {
          taskId: a.ref.taskId,
          attempt: a.ref.attempt,
          spec,
          environment: assignment.environment,
          workspaceRoot: this.workDir,
          onOutput: (chunk) => this.onOutput(a, chunk),
          logger: a.logger,
          ...(inputs ? { stageInputs: (dirs) => inputs.stage(dirs) } : {}),
        });
      } catch (err) {
        failure = `cannot create the ${kind} executor: ${errorMessage(err)}`;
      }
    }
    if (!executor && failure === undefined) {
      failure = `unsupported task type "${spec.type}": this agent runs ${this.executors.map((e) => `"${e}"`).join(", ") || "nothing"}`;
    }
    if (executor) {
      a.executor = executor;
      try {
        if (a.stop) executor.cancel(this.settings.cancelGraceMs);
        this.sendStatus(a, TaskStatus.SETUP);
        try {
          await executor.prepare();
        } catch (err) {
          failure = `setup failed: ${errorMessage(err)}`;
        }
        if (failure === undefined && !a.stop) {
          try {
            await executor.start();
          } catch (err) {
            failure = errorMessage(err);
          }
          if (failure === undefined) {
            if (!a.stop) this.sendStatus(a, TaskStatus.RUNNING);
            result = await executor.wait();
          }
        }
        a.ended = true;
        if (failure === undefined && result && !a.stop) {
          let artefactDir: string | undefined;
          try {
            artefactDir = (await executor.collect()).artefactDir;
          } catch (err) {
            failure = `collecting the results failed: ${errorMessage(err)}`;
          }
          // Artefacts of a script that ran to its end: always on success, on failure unless
          // disable_push_on_failure; never after an executor error or a kill.
          const pushed =
            result.error === undefined && result.exitCode !== null && (result.exitCode === 0 || !spec.disablePushOnFailure);
          if (artefactDir !== undefined && pushed) {
            try {
              await uploadArtefacts({
                transport: this.transport,
                token: assignment.taskToken,
                taskId: a.ref.taskId,
                dir: artefactDir,
                filters: spec.artefactPushFilters,
                output,
                logger: a.logger,
              });
            } catch (err) {
              failure = errorMessage(err);
            }
          }
        }
      } finally {
        a.ended = true;
        await inputs?.release();
        try {
          await executor.destroy();
        } catch (err) {
          a.logger.warn({ err }, "cleaning up the executor failed");
        }
      }
    }
    a.ended = true;
    this.timers.clearTimeout(a.timeoutTimer);
    const stop = a.stop;
    let outcome: Outcome;
    if (stop) outcome = { result: TaskResult.ERROR, error: stop.error };
    else if (failure !== undefined) outcome = { result: TaskResult.ERROR, error: failure };
    else if (!result) outcome = { result: TaskResult.ERROR, error: "the script did not run" };
    else if (result.error !== undefined) outcome = { result: TaskResult.ERROR, error: result.error };
    else if (result.exitCode === null) outcome = { result: TaskResult.ERROR, error: `killed by ${result.signal ?? "a signal"}` };
    else if (result.exitCode === 0) outcome = { result: TaskResult.SUCCESS, exitCode: 0, error: "" };
    else outcome = { result: TaskResult.FAILED, exitCode: result.exitCode, error: "" };

    a.occupying = false;
    if (this.session?.welcomed && !this.stopping) this.send({ case: "credit", value: { slots: 1 } });
    if (a.stop?.report === false) {
      a.logger.info("attempt ended and dropped");
      this.forget(a);
      this.checkStopped();
      return;
    }
    this.settle(a, outcome);
  }

  private settle(a: Attempt, outcome: Outcome): void {
    a.ended = true;
    a.outcome = outcome;
    a.logger.info(
      { result: TaskResult[outcome.result], exitCode: outcome.exitCode, error: outcome.error || undefined, logSize: a.log.size },
      "attempt ended",
    );
    this.pump(a, true);
  }

  private stopAttempt(a: Attempt, stop: Stop): void {
    if (a.forgotten) return;
    if (a.ended) {
      if (!stop.report) {
        a.stop = { error: a.stop?.error ?? stop.error, report: false };
        if (a.outcome !== undefined || !a.occupying) this.forget(a);
        this.checkStopped();
      }
      return;
    }
    if (a.stop) {
      if (!stop.report) a.stop.report = false;
      return;
    }
    a.stop = stop;
    a.logger.info({ reason: stop.error }, "stopping the attempt");
    a.executor?.cancel(this.settings.cancelGraceMs);
  }

  private onCancel(c: CancelAttempt): void {
    const a = this.find(c.ref);
    if (!a) {
      this.logger.debug({ taskId: c.ref?.taskId, attempt: c.ref?.attempt }, "cancel for an attempt this agent does not hold");
      return;
    }
    const lost = c.reason === CancelReason.LEASE_LOST;
    a.logger.info({ reason: CancelReason[c.reason] }, "the server cancels the attempt");
    this.stopAttempt(a, { error: cancelWords(c.reason, a.timeout), report: !lost });
  }

  private onOutput(a: Attempt, chunk: Buffer): void {
    if (a.forgotten) return;
    try {
      a.log.append(chunk);
    } catch (err) {
      a.logger.error({ err }, "cannot buffer the log");
      this.stopAttempt(a, { error: `cannot buffer the log: ${errorMessage(err)}`, report: true });
      return;
    }
    if (a.log.pending >= this.chunkLimit()) this.pump(a, false);
    this.armFlush();
  }

  private chunkLimit(): number {
    return Math.max(1, Math.min(this.settings.maxChunkBytes, this.maxUnacked));
  }

  private armFlush(): void {
    if (this.flushTimer !== undefined || !this.session?.welcomed) return;
    this.flushTimer = this.timers.setTimeout(() => {
      this.flushTimer = undefined;
      for (const a of this.attempts.values()) this.pump(a, true);
    }, this.settings.logFlushMs);
  }

  /** Sends what the window allows: whole chunks always, a partial chunk when `force`; then TaskFinished once all was sent. */
  private pump(a: Attempt, force: boolean): void {
    const session = this.session;
    if (!session?.welcomed || session.outgoing.closed || a.forgotten || a.stop?.report === false) return;
    const limit = this.chunkLimit();
    const partial = force || a.outcome !== undefined;
    while (a.log.pending > 0) {
      const n = Math.min(limit, a.log.pending);
      if (n < limit && !partial) break;
      if (a.log.inFlight + n > this.maxUnacked) break;
      const c = a.log.chunk(n);
      if (!c) break;
      this.send({ case: "log", value: { ref: a.ref, offset: BigInt(c.offset), data: c.data } });
    }
    if (a.outcome && !a.finishedSent && a.log.pending === 0) {
      a.finishedSent = true;
      this.send({
        case: "finished",
        value: {
          ref: a.ref,
          result: a.outcome.result,
          exitCode: a.outcome.exitCode,
          error: a.outcome.error,
          logSize: BigInt(a.log.size),
        },
      });
    }
    if (a.log.pending > 0) this.armFlush();
  }

  private onLogAck(ack: LogAck): void {
    const a = this.find(ack.ref);
    if (!a || a.stop?.report === false) return;
    const committed = Number(ack.committedOffset);
    if (committed > a.log.size) {
      a.logger.error({ committed, size: a.log.size }, "the server acknowledged more log than this attempt has");
      return;
    }
    a.log.ack(committed);
    if (ack.resend && a.rewoundTo !== committed) {
      try {
        a.log.rewind(committed);
        a.rewoundTo = committed;
        a.logger.debug({ offset: committed }, "resending the log");
      } catch (err) {
        a.logger.error({ err }, "cannot resend the log from where the server asks");
      }
    }
    this.pump(a, false);
  }

  private onFinishAck(ref: AttemptRef | undefined): void {
    const a = this.find(ref);
    if (!a) return;
    if (!a.outcome) {
      a.logger.warn("ignoring a finish acknowledgement for an attempt still running");
      return;
    }
    a.logger.debug("the server recorded the end");
    this.forget(a);
    this.checkStopped();
  }

  private forget(a: Attempt): void {
    if (a.forgotten) return;
    a.forgotten = true;
    this.timers.clearTimeout(a.timeoutTimer);
    a.log.dispose();
    this.attempts.delete(a.key);
  }

  private checkStopped(): void {
    if (!this.finishedStopping()) return;
    if (this.session) this.closeSession(this.session, false);
    this.wake();
  }

  private closeSession(session: Session, now: boolean): void {
    session.closingByUs = true;
    session.outgoing.close();
    if (now) {
      session.abort.abort();
      return;
    }
    if (session.closeTimer === undefined) session.closeTimer = this.timers.setTimeout(() => session.abort.abort(), 2000);
  }

  private sendStatus(a: Attempt, status: TaskStatus): void {
    this.send({ case: "status", value: { ref: a.ref, status } });
  }

  private send(message: RequestMessage): void {
    const session = this.session;
    if (!session?.welcomed) return;
    session.outgoing.push(create(ConnectRequestSchema, { message }));
  }
}

/** Creates an agent; nothing happens until run(). */
export function createAgent(options: AgentOptions): Agent {
  const runner = new AgentRunner(options);
  return { run: () => runner.run(), stop: () => runner.stop() };
}
