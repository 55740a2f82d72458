import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AttemptRefSchema,
  CancelReason,
  ConnectResponseSchema,
  PROTOCOL_VERSION,
  TaskStatus,
  type AttemptRef,
  type ConnectRequest,
  type ConnectResponse,
} from "@mottainai/proto";
import type { Logger } from "pino";
import { resultFromProto, specFromDefinition } from "../convert/task-convert.js";
import type { AgentOutbox, AgentSession, AttemptKey, CancelCause } from "../dispatch/agent-session.js";
import type { Scheduler } from "../dispatch/scheduler.js";
import type { NodeRecord } from "../store/node-store.js";

/** Timers the server hands agents in the welcome. */
export interface AgentTimers {
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
  logFlushIntervalMs: number;
  maxChunkBytes: number;
  cancelGraceMs: number;
}

const CANCEL_REASON: Record<CancelCause, CancelReason> = {
  "stop-requested": CancelReason.STOP_REQUESTED,
  timeout: CancelReason.TIMEOUT,
  "lease-lost": CancelReason.LEASE_LOST,
  deleted: CancelReason.DELETED,
};

const toKey = (ref: AttemptRef | undefined): AttemptKey => {
  if (!ref?.taskId) throw new ConnectError("message without an attempt ref", Code.InvalidArgument);
  return { taskId: ref.taskId, attempt: ref.attempt, leaseId: ref.leaseId };
};

const toRef = (key: AttemptKey) => create(AttemptRefSchema, key);

/** One agent's open stream, as the wire layer drives it. */
export interface AgentStream {
  /** The welcome to send first. */
  readonly welcome: ConnectResponse;
  /** Handles one agent message; the wire layer calls it for one message at a time, in order. */
  handle(request: ConnectRequest): Promise<void>;
  /** Ends the session (the stream is gone); the wire layer calls it once, when no handle() runs. */
  end(): Promise<void>;
}

/**
 * Where the server's messages for one agent go; close() ends the stream with status OK (the
 * scheduler closes a session this way when a newer stream of the node replaces it, the node is
 * removed, or the server stops).
 */
export interface AgentSink {
  send(response: ConnectResponse): void;
  close(): void;
}

/** The agent stream's service: turns agent messages into scheduler calls and back. */
export interface AgentService {
  /**
   * Checks the hello (the stream's first message) and registers the session with the scheduler.
   * Throws a ConnectError (InvalidArgument, FailedPrecondition) for a bad hello.
   */
  open(node: NodeRecord, hello: ConnectRequest, sink: AgentSink): Promise<AgentStream>;
}

/**
 * AgentService: the agent stream (DESIGN §3). open() checks the hello and builds the welcome;
 * each agent message becomes a scheduler call and each scheduler outbox call a server message.
 * The wire (gRPC framing, http/grpc-agent-route.ts) is not its business.
 */
export function createAgentService(scheduler: Scheduler, timers: AgentTimers, logger: Logger): AgentService {
  return {
    async open(node, first, sink) {
      const hello = first.message;
      if (hello.case !== "hello") throw new ConnectError("the first message must be a hello", Code.InvalidArgument);
      if (hello.value.protocolVersion !== PROTOCOL_VERSION) {
        throw new ConnectError(
          `protocol version mismatch: agent speaks ${hello.value.protocolVersion}, server speaks ${PROTOCOL_VERSION}; upgrade the older side`,
          Code.FailedPrecondition,
        );
      }
      const log = logger.child({ nodeId: node.id, node: node.name });
      const send = (message: MessageInitShape<typeof ConnectResponseSchema>["message"]) =>
        sink.send(create(ConnectResponseSchema, { message }));
      const outbox: AgentOutbox = {
        assign: (a) =>
          send({
            case: "assignment",
            value: {
              ref: toRef(a.key),
              spec: specFromDefinition(a.definition),
              environment: a.environment,
              taskToken: a.taskToken,
            },
          }),
        logAck: (key, committed, resend) =>
          send({ case: "logAck", value: { ref: toRef(key), committedOffset: BigInt(committed), resend } }),
        finishAck: (key) => send({ case: "finishAck", value: { ref: toRef(key) } }),
        cancel: (key, cause) => send({ case: "cancel", value: { ref: toRef(key), reason: CANCEL_REASON[cause] } }),
        drain: (draining) => send({ case: "drain", value: { draining } }),
        close: () => sink.close(),
      };
      const h = hello.value;
      const { session, reconciliation } = await scheduler.connect(
        node,
        {
          hostname: h.hostname,
          agentVersion: h.agentVersion,
          labels: { ...h.labels },
          queues: h.queues.length
            ? h.queues.map((q) => ({ queue: q.queue, slots: q.slots }))
            : [{ queue: "general", slots: h.capacity }],
          executors: [...h.executors],
          capacity: h.capacity,
        },
        outbox,
        h.running.map((r) => toKey(r.ref)),
      );
      log.info({ executors: h.executors, capacity: h.capacity, running: h.running.length }, "agent connected");
      return {
        welcome: create(ConnectResponseSchema, {
          message: {
            case: "welcome",
            value: {
              nodeId: node.id,
              nodeName: node.name,
              protocolVersion: PROTOCOL_VERSION,
              heartbeatInterval: durationFromMs(timers.heartbeatIntervalMs),
              leaseTtl: durationFromMs(timers.leaseTtlMs),
              logFlushInterval: durationFromMs(timers.logFlushIntervalMs),
              maxChunkBytes: timers.maxChunkBytes,
              keep: reconciliation.keep.map(toRef),
              cancel: reconciliation.cancel.map(toRef),
              cancelGrace: durationFromMs(timers.cancelGraceMs),
              draining: session.node.draining,
            },
          },
        }),
        handle: (request) => handle(scheduler, session, request),
        async end() {
          await scheduler.disconnect(session);
          log.info("agent disconnected");
        },
      };
    },
  };
}

async function handle(scheduler: Scheduler, session: AgentSession, request: ConnectRequest): Promise<void> {
  const m = request.message;
  switch (m.case) {
    case "credit":
      scheduler.credit(session, m.value.slots);
      return;
    case "heartbeat":
      await scheduler.heartbeat(session);
      return;
    case "status":
      if (m.value.status === TaskStatus.RUNNING) await scheduler.running(session, toKey(m.value.ref));
      return;
    case "log":
      await scheduler.log(session, toKey(m.value.ref), Number(m.value.offset), m.value.data);
      return;
    case "finished":
      await scheduler.finished(session, toKey(m.value.ref), {
        result: resultFromProto(m.value.result),
        exitCode: m.value.exitCode ?? null,
        error: m.value.error,
        logSize: Number(m.value.logSize),
      });
      return;
    case "hello":
      throw new ConnectError("hello sent twice on one stream", Code.InvalidArgument);
    default:
      return;
  }
}
