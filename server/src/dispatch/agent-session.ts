import type { NodeRecord } from "../store/node-store.js";
import type { TaskDefinition } from "../store/task-store.js";

/** Identifies one attempt under one lease; every message about a task carries it. */
export interface AttemptKey {
  taskId: string;
  attempt: number;
  leaseId: string;
}

/** Why the server stops an attempt. */
export type CancelCause = "stop-requested" | "timeout" | "lease-lost" | "deleted";

/** What the scheduler hands an agent to run. */
export interface AttemptAssignment {
  key: AttemptKey;
  definition: TaskDefinition;
  environment: Record<string, string>;
  /** The attempt's task token (`mtt_…`): the running task's credential for its artefacts and inputs. */
  taskToken: string;
}

/**
 * The messages the scheduler sends to one connected agent. The agent service implements it by
 * writing protobuf messages on the stream; calls after the stream closed are dropped.
 */
export interface AgentOutbox {
  assign(assignment: AttemptAssignment): void;
  logAck(key: AttemptKey, committedOffset: number, resend: boolean): void;
  finishAck(key: AttemptKey): void;
  cancel(key: AttemptKey, cause: CancelCause): void;
  drain(draining: boolean): void;
  /** Ends the stream (the node reconnected elsewhere, was removed, or the server stops). */
  close(): void;
}

/** What an agent declares in its hello. */
export interface AgentCapabilities {
  hostname: string;
  agentVersion: string;
  labels: Record<string, string>;
  queues: { queue: string; slots: number }[];
  executors: string[];
  capacity: number;
}

/** The scheduler's view of one connected agent (one stream). */
export interface AgentSession {
  readonly id: number;
  node: NodeRecord;
  capabilities: AgentCapabilities;
  outbox: AgentOutbox;
  /** Slots the agent granted and no assignment used yet. */
  credit: number;
  /** Attempts assigned to this session and not ended, per queue. */
  runningByQueue: Map<string, number>;
  closed: boolean;
}
