import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AgentService,
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
import { requireNode } from "../auth/principal.js";
import { AsyncQueue } from "../async-queue.js";
import { resultFromProto, specFromDefinition } from "../convert/task-convert.js";
import type { AgentOutbox, AgentSession, AttemptKey, CancelCause } from "../dispatch/agent-session.js";
import type { Scheduler } from "../dispatch/scheduler.js";

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

/**
 * AgentService: the agent stream (DESIGN §3). It checks the hello, answers with the welcome,
 * then turns each agent message into a scheduler call and each scheduler outbox call into a
 * server message. Messages of one stream are handled one at a time, in order.
 */
export function createAgentService(scheduler: Scheduler, timers: AgentTimers, logger: Logger): ServiceImpl<typeof AgentService> {
  return {
    async *connect(requests, ctx) {
      const node = requireNode(ctx);
      const log = logger.child({ nodeId: node.id, node: node.name });
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      const hello = first.done ? undefined : first.value.message;
      if (hello?.case !== "hello") throw new ConnectError("the first message must be a hello", Code.InvalidArgument);
      if (hello.value.protocolVersion !== PROTOCOL_VERSION) {
        throw new ConnectError(
          `protocol version mismatch: agent speaks ${hello.value.protocolVersion}, server speaks ${PROTOCOL_VERSION}; upgrade the older side`,
          Code.FailedPrecondition,
        );
      }
      const outgoing = new AsyncQueue<ConnectResponse>();
      const send = (message: MessageInitShape<typeof ConnectResponseSchema>["message"]) =>
        outgoing.push(create(ConnectResponseSchema, { message }));
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
        close: () => outgoing.close(),
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
      yield create(ConnectResponseSchema, {
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
      });
      // Handles the agent's messages in order while the generator below yields the server's.
      void (async () => {
        try {
          for (;;) {
            const next = await iterator.next();
            if (next.done || session.closed) break;
            await handle(scheduler, session, next.value);
          }
          outgoing.close();
        } catch (err) {
          outgoing.fail(err);
        } finally {
          await scheduler.disconnect(session);
          log.info("agent disconnected");
        }
      })();
      try {
        yield* outgoing;
      } finally {
        session.closed = true;
        outgoing.close();
      }
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
