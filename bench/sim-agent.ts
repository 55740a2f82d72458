import { performance } from "node:perf_hooks";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  AgentService,
  ConnectRequestSchema,
  PROTOCOL_VERSION,
  TaskResult,
  TaskStatus,
  type AgentWelcome,
  type CancelAttempt,
  type ConnectRequest,
  type FinishAck,
  type LogAck,
  type TaskAssignment,
} from "@mottainai/proto";
import { bearer, type Api } from "./api-clients.js";
import { PushQueue } from "./push-queue.js";

/**
 * What a simulated agent does with an assignment:
 * - "finish": reports RUNNING, then finished SUCCESS with an empty log, and grants one credit
 *   on each FinishAck (a fake task that ends at once);
 * - "hold": reports RUNNING and never finishes (a long task);
 * - "manual": nothing; the caller drives the attempt with send() and grants credit itself.
 */
export type SimBehaviour = "finish" | "hold" | "manual";

/** A message an agent sends on its stream. */
export type AgentMessage = NonNullable<MessageInitShape<typeof ConnectRequestSchema>["message"]>;

/** Options of connectSimAgent. */
export interface SimAgentOptions {
  baseUrl: string;
  /** Node credential from RegisterNode. */
  credential: string;
  hostname: string;
  /** Slots on the general queue; also the capacity and the credit granted after the welcome. */
  slots: number;
  behaviour: SimBehaviour;
  /** Called with each assignment and performance.now() at its arrival, before the behaviour acts. */
  onAssignment?: (assignment: TaskAssignment, receivedAt: number) => void;
  onLogAck?: (ack: LogAck) => void;
  onFinishAck?: (ack: FinishAck) => void;
  onCancel?: (cancel: CancelAttempt) => void;
}

/** A connected simulated agent. */
export interface SimAgent {
  readonly welcome: AgentWelcome;
  /** Sends one message on the agent stream. */
  send(message: AgentMessage): void;
  /** Resolves when the stream ended: undefined after close(), the error otherwise. */
  readonly ended: Promise<unknown>;
  /** Ends the stream and closes the connection. Idempotent. */
  close(): void;
}

/** Registers a node with a registration token and returns its credential. */
export async function registerSimNode(api: Api, registrationToken: string, name: string): Promise<string> {
  return (await api.nodes.registerNode({ registrationToken, name, hostname: name })).credential;
}

/**
 * A lightweight client of the agent protocol (DESIGN §3), not the real agent: one HTTP/2
 * connection of its own (its own Http2SessionManager), one AgentService.Connect stream. It sends
 * the hello (executor "fake", the general queue), waits for the welcome, grants its slots as
 * credit, heartbeats at the welcome's interval and treats assignments as `behaviour` says.
 * Resolves once the welcome arrived and the credit is queued.
 */
export async function connectSimAgent(o: SimAgentOptions): Promise<SimAgent> {
  const sessionManager = new Http2SessionManager(o.baseUrl);
  const transport = createGrpcTransport({ baseUrl: o.baseUrl, sessionManager, interceptors: [bearer(o.credential)] });
  const client = createClient(AgentService, transport);
  const outgoing = new PushQueue<ConnectRequest>();
  const abort = new AbortController();
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    outgoing.close();
    abort.abort();
    sessionManager.abort();
  };
  const send = (message: AgentMessage) => outgoing.push(create(ConnectRequestSchema, { message }));

  send({
    case: "hello",
    value: {
      protocolVersion: PROTOCOL_VERSION,
      agentVersion: "bench-sim",
      hostname: o.hostname,
      executors: ["fake"],
      queues: [{ queue: "general", slots: o.slots }],
      capacity: o.slots,
    },
  });
  const responses = client.connect(outgoing, { signal: abort.signal })[Symbol.asyncIterator]();
  let welcome: AgentWelcome;
  try {
    const first = await responses.next();
    if (first.done || first.value.message.case !== "welcome") {
      throw new Error(`${o.hostname}: the server's first message was not a welcome`);
    }
    welcome = first.value.message.value;
  } catch (err) {
    close();
    throw err;
  }

  let sequence = 0n;
  const heartbeatMs = welcome.heartbeatInterval ? durationMs(welcome.heartbeatInterval) : 10_000;
  const heartbeat = setInterval(() => send({ case: "heartbeat", value: { sequence: ++sequence } }), heartbeatMs);
  send({ case: "credit", value: { slots: o.slots } });

  const onAssignment = (a: TaskAssignment) => {
    o.onAssignment?.(a, performance.now());
    if (o.behaviour === "manual") return;
    send({ case: "status", value: { ref: a.ref, status: TaskStatus.RUNNING } });
    if (o.behaviour === "hold") return;
    send({ case: "finished", value: { ref: a.ref, result: TaskResult.SUCCESS, exitCode: 0, logSize: 0n } });
  };

  const ended = (async (): Promise<unknown> => {
    try {
      for (;;) {
        const next = await responses.next();
        if (next.done) return closing ? undefined : new Error(`${o.hostname}: the server ended the stream`);
        const m = next.value.message;
        switch (m.case) {
          case "assignment":
            onAssignment(m.value);
            break;
          case "logAck":
            o.onLogAck?.(m.value);
            break;
          case "finishAck":
            o.onFinishAck?.(m.value);
            if (o.behaviour !== "manual") send({ case: "credit", value: { slots: 1 } });
            break;
          case "cancel":
            o.onCancel?.(m.value);
            break;
          default:
            break;
        }
      }
    } catch (err) {
      return closing ? undefined : err;
    } finally {
      clearInterval(heartbeat);
      close();
    }
  })();

  return { welcome, send, ended, close };
}
