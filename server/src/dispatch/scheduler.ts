import type { Logger } from "pino";
import { executorForTaskType, TASK_TYPES } from "@mottainai/proto";
import { generateSecret, hashSecret, newId } from "../auth/secrets.js";
import type { EventBus } from "../events/event-bus.js";
import type { SchedulerMetrics } from "../metrics/server-metrics.js";
import type { TaskLogStore } from "../logs/task-log-store.js";
import type { EventRecord } from "../store/event-store.js";
import type { NodeRecord } from "../store/node-store.js";
import type { Store } from "../store/store.js";
import type { TaskOutcome, TaskRecord, TaskState } from "../store/task-store.js";
import type { AgentCapabilities, AgentOutbox, AgentSession, AttemptKey } from "./agent-session.js";
import { taskEnvironment } from "./task-environment.js";

/** Timers and limits of the scheduler. */
export interface SchedulerOptions {
  store: Store;
  logs: TaskLogStore;
  events: EventBus;
  logger: Logger;
  leaseTtlMs: number;
  /** How long after start() agents have to re-claim the attempts that were running. */
  restartGraceMs: number;
  /**
   * How long an agent whose stream closed has to reconnect before the leases of its attempts
   * expire (they are brought forward to this). The heartbeat interval is a good value: an agent
   * that died is noticed within about one interval, one that blinked reconnects in time.
   */
  disconnectGraceMs: number;
  /** Attempts lost to infrastructure that are requeued before the task ends in error. */
  maxInfraRetries: number;
  /**
   * Called when an attempt reports success, before its end is recorded (the agent has uploaded
   * the artefacts by then): publishes them to the task's tag_namespace. Never throws; a non-empty
   * result is a note recorded as the task's error while its result stays success.
   */
  onSuccess?: (task: TaskRecord) => Promise<string>;
  /** How often expired leases are looked for and heartbeats written. Default lease TTL / 10, 50 ms to 1 s. */
  sweepIntervalMs?: number;
  /**
   * Other servers share the store (and `events` is a shared EventBus). The scheduler then also
   * reacts to their events: new or requeued work wakes dispatch, a stop requested elsewhere is
   * pushed to the agent if it is connected here, drain and removal of a node reach its stream.
   * Every sweep also looks for waiting work (a safety net for an event the feed moved past).
   * Default false.
   */
  shared?: boolean;
  /** Receives dispatches, attempt ends, lease expiries and log bytes (GET /metrics). */
  metrics?: SchedulerMetrics;
  now?: () => number;
}

/** How an agent reported an attempt's end. */
export interface AttemptReport {
  result: TaskOutcome;
  exitCode: number | null;
  error: string;
  /** Log bytes the attempt produced, relative to its start. */
  logSize: number;
}

/** An attempt that runs now, as the scheduler tracks it in memory. */
interface ActiveAttempt {
  key: AttemptKey;
  nodeId: string;
  queue: string;
  logBase: number;
  /** When the server itself cancels the attempt for running past its timeout; 0 for never. */
  deadline: number;
  /** When this server assigned the attempt (unknown for attempts re-claimed after a restart). */
  assignTime?: number;
  pendingReport?: AttemptReport;
}

/** Slack the agent gets to enforce a task's timeout itself before the server cancels it. */
const TIMEOUT_SLACK_MS = 5000;

/** What a reconnecting agent is told about the attempts it reported. */
export interface Reconciliation {
  keep: AttemptKey[];
  cancel: AttemptKey[];
}

/** Most waiting tasks one dispatch pass looks at. */
const WAITING_PAGE = 1000;

const deadlineOf = (task: TaskRecord, start: number) =>
  task.definition.timeout > 0 ? start + task.definition.timeout * 1000 + TIMEOUT_SLACK_MS : 0;

const keyOf = (k: AttemptKey) => `${k.taskId}#${k.attempt}`;

/**
 * Matches waiting tasks to connected agents and keeps every attempt's state true (DESIGN §3).
 *
 * Dispatch is pushed: a task creation, a credit, a drain change or an attempt's end calls kick(),
 * which runs one dispatch pass soon after (passes never overlap). An assignment is persisted
 * (compare-and-set on the task's attempt) before it is sent. Messages about an attempt are
 * accepted only under its current lease; anything else gets a lease-lost cancel back.
 * A sweep ends attempts whose lease expired: requeued as a new attempt up to maxInfraRetries,
 * then ended in error.
 */
export class Scheduler {
  private readonly sessions = new Map<string, AgentSession>();
  private readonly active = new Map<string, ActiveAttempt>();
  private nextSessionId = 1;
  /** Per owner, the serveCounter value of its latest assignment (fairness across owners). */
  private readonly lastServed = new Map<string, number>();
  private serveCounter = 0;
  private readonly targetPatterns = new Map<string, RegExp>();
  /** Heartbeat times not written yet, per node. */
  private heartbeats = new Map<string, number>();
  /**
   * Whether a waiting task may exist. Cleared when a pass finds none in the store; set by
   * anything that makes one (a task created, requeued or restarted). While it is clear, credits
   * cost no dispatch pass, so thousands of idle agents connect in linear time.
   */
  private maybeWaiting = true;
  private dispatching = false;
  private dirty = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private unlisten: (() => void) | undefined;
  /** Attempts a stop-requested cancel was pushed for (so the event of the same stop is not pushed again). */
  private readonly stopPushed = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly o: SchedulerOptions) {
    this.now = o.now ?? Date.now;
  }

  /**
   * Loads the attempts that were running when the server stopped and gives their agents the
   * restart grace to reconnect and claim them; then starts the lease sweep.
   */
  async start(): Promise<void> {
    const now = this.now();
    for (const task of await this.o.store.tasks.listActive()) {
      const attempts = await this.o.store.tasks.attempts(task.id);
      const current = attempts.find((a) => a.number === task.attempt);
      this.active.set(keyOf({ taskId: task.id, attempt: task.attempt, leaseId: task.leaseId }), {
        key: { taskId: task.id, attempt: task.attempt, leaseId: task.leaseId },
        nodeId: task.nodeId,
        queue: task.queue,
        logBase: current?.logBase ?? 0,
        deadline: deadlineOf(task, current?.startTime ?? now),
      });
      await this.o.store.tasks.renewLeases(task.nodeId, now + this.o.restartGraceMs);
    }
    const interval = this.o.sweepIntervalMs ?? Math.min(1000, Math.max(50, this.o.leaseTtlMs / 10));
    this.sweepTimer = setInterval(
      () => void this.sweep().catch((err) => this.o.logger.error({ err }, "lease sweep failed")),
      interval,
    );
    this.sweepTimer.unref();
    if (this.o.shared) this.unlisten = this.o.events.listen((e) => this.onSharedEvent(e));
    this.kick(true);
  }

  /** What another server (or this one) did that concerns this server's agents. */
  private onSharedEvent(e: EventRecord): void {
    switch (e.type) {
      case "task.created":
      case "task.restarted":
      case "task.requeued":
        this.kick(true);
        return;
      case "task.stop": {
        const task = e.payload as TaskRecord | null;
        if (!task?.leaseId) return;
        const key = { taskId: task.id, attempt: task.attempt, leaseId: task.leaseId };
        const session = this.sessions.get(task.nodeId);
        if (!session || this.stopPushed.has(keyOf(key))) return;
        this.stopPushed.add(keyOf(key));
        session.outbox.cancel(key, "stop-requested");
        return;
      }
      case "node.drained":
      case "node.resumed": {
        const node = e.payload as NodeRecord | null;
        const session = node && this.sessions.get(node.id);
        if (session && session.node.draining !== node.draining) this.setDraining({ ...session.node, draining: node.draining });
        return;
      }
      case "node.removed":
        if (this.sessions.has(e.subjectId)) this.forget(e.subjectId);
        return;
      default:
        return;
    }
  }

  /** Stops the sweep and ends every agent stream; agents reconnect to the next server. */
  close(): void {
    clearInterval(this.sweepTimer);
    this.unlisten?.();
    for (const session of this.sessions.values()) {
      session.closed = true;
      session.outbox.close();
    }
    this.sessions.clear();
  }

  /**
   * Whether the node has a live stream: here, or (with other servers, given its record) on
   * another server that recorded its connection or a heartbeat within two disconnect graces
   * and a sweep.
   */
  isOnline(nodeId: string, node?: NodeRecord): boolean {
    if (this.sessions.has(nodeId)) return true;
    if (!this.o.shared || !node) return false;
    const window = 2 * this.o.disconnectGraceMs + (this.o.sweepIntervalMs ?? 1000);
    return Math.max(node.connectTime, node.lastHeartbeatTime) > this.now() - window;
  }

  /**
   * Registers a new stream for the node, replacing (and closing) any older stream of the same
   * node, and reconciles the attempts the agent reports with the store.
   */
  async connect(
    node: NodeRecord,
    capabilities: AgentCapabilities,
    outbox: AgentOutbox,
    reported: AttemptKey[],
  ): Promise<{ session: AgentSession; reconciliation: Reconciliation }> {
    const previous = this.sessions.get(node.id);
    if (previous) {
      previous.closed = true;
      previous.outbox.close();
    }
    const now = this.now();
    await this.o.store.nodes.updateConnection(node.id, { ...capabilities, connectTime: now });
    const fresh = (await this.o.store.nodes.get(node.id)) ?? node;
    const session: AgentSession = {
      id: this.nextSessionId++,
      node: fresh,
      capabilities,
      outbox,
      credit: 0,
      runningByQueue: new Map(),
      closed: false,
    };
    const reconciliation: Reconciliation = { keep: [], cancel: [] };
    const reportedKeys = new Set(reported.map(keyOf));
    for (const key of reported) {
      const active = this.active.get(keyOf(key)) ?? (await this.adopt(node.id, key, outbox));
      if (active && active.key.leaseId === key.leaseId && active.nodeId === node.id) {
        reconciliation.keep.push(active.key);
        session.runningByQueue.set(active.queue, (session.runningByQueue.get(active.queue) ?? 0) + 1);
      } else {
        reconciliation.cancel.push(key);
      }
    }
    // Attempts the store gives this node that the agent no longer has were lost with it.
    for (const active of [...this.active.values()]) {
      if (active.nodeId === node.id && !reportedKeys.has(keyOf(active.key))) {
        await this.loseAttempt(active, "the agent restarted without this attempt");
      }
    }
    await this.o.store.tasks.renewLeases(node.id, now + this.o.leaseTtlMs);
    this.sessions.set(node.id, session);
    await this.o.events.publish("node.connected", node.id, { kind: "node", value: fresh });
    if (fresh.draining) outbox.drain(true);
    return { session, reconciliation };
  }

  /**
   * An attempt another server dispatched (or ran until its agent moved here), taken over when
   * the store still holds it under this node and lease: the leases are in the shared store, so
   * an agent whose server died re-claims its attempts on any other.
   */
  private async adopt(nodeId: string, key: AttemptKey, outbox: AgentOutbox): Promise<ActiveAttempt | undefined> {
    const task = await this.o.store.tasks.get(key.taskId);
    if (!task || task.nodeId !== nodeId || task.attempt !== key.attempt || task.leaseId !== key.leaseId) return undefined;
    if (task.status !== "setup" && task.status !== "running" && task.status !== "stop") return undefined;
    const current = (await this.o.store.tasks.attempts(task.id)).find((a) => a.number === task.attempt);
    const active: ActiveAttempt = {
      key: { taskId: task.id, attempt: task.attempt, leaseId: task.leaseId },
      nodeId,
      queue: task.queue,
      logBase: current?.logBase ?? 0,
      deadline: deadlineOf(task, current?.startTime ?? this.now()),
    };
    this.active.set(keyOf(active.key), active);
    // A stop requested while the agent was between servers: sent after the welcome.
    if (task.status === "stop") {
      this.stopPushed.add(keyOf(active.key));
      outbox.cancel(active.key, "stop-requested");
    }
    this.o.logger.info({ taskId: task.id, attempt: task.attempt, nodeId }, "re-claimed an attempt another server dispatched");
    return active;
  }

  /**
   * Forgets a closed stream. Its attempts' leases are brought forward to expire within the
   * disconnect grace: an agent that comes back in time re-claims them, a dead one loses them.
   * A stream replaced by a newer one of the same node (here, or with other servers on another
   * server), or closed by close(), changes nothing.
   */
  async disconnect(session: AgentSession): Promise<void> {
    session.closed = true;
    if (this.sessions.get(session.node.id) === session) {
      this.sessions.delete(session.node.id);
      // With other servers, the agent may already have reconnected to one of them (this server
      // noticed the lost stream late): its leases are that server's to renew.
      if (this.o.shared) {
        const now = await this.o.store.nodes.get(session.node.id);
        if (now && now.connectTime > session.node.connectTime) return;
      }
      await this.o.store.tasks.shortenLeases(session.node.id, this.now() + this.o.disconnectGraceMs);
      await this.o.events.publish("node.disconnected", session.node.id, { kind: "node", value: session.node });
    }
  }

  /** Agents whose stream is open on this server. */
  connectedAgents(): number {
    return this.sessions.size;
  }

  /** Adds granted slots to the session's credit. */
  credit(session: AgentSession, slots: number): void {
    session.credit += slots;
    this.kick();
  }

  /**
   * Renews every lease of the session's node (an idle node holds none: no write for it). The
   * node's heartbeat time is written with the others at the next sweep, in one transaction.
   */
  async heartbeat(session: AgentSession): Promise<void> {
    const now = this.now();
    let holdsLeases = false;
    for (const running of session.runningByQueue.values()) holdsLeases ||= running > 0;
    if (holdsLeases) await this.o.store.tasks.renewLeases(session.node.id, now + this.o.leaseTtlMs);
    this.heartbeats.set(session.node.id, now);
  }

  /** Records that an attempt's executor started its script. */
  async running(session: AgentSession, key: AttemptKey): Promise<void> {
    if (!this.current(session, key)) return;
    const task = await this.o.store.tasks.markRunning(key.taskId, key.attempt, key.leaseId, this.now());
    if (task) await this.publishTask("task.running", task);
  }

  /**
   * Appends log bytes sent at offset (relative to the attempt) if they continue the committed
   * log, and acknowledges the committed size; asks for a resend from there otherwise.
   */
  async log(session: AgentSession, key: AttemptKey, offset: number, data: Uint8Array): Promise<void> {
    const active = this.current(session, key);
    if (!active) return;
    let committed = (await this.o.logs.size(key.taskId)) - active.logBase;
    let resend = false;
    if (offset > committed) {
      resend = true;
    } else if (offset + data.length > committed) {
      const before = committed;
      committed =
        (await this.o.logs.append(key.taskId, committed + active.logBase, data.subarray(committed - offset))) - active.logBase;
      if (committed > before) this.o.metrics?.logAppended(committed - before);
    }
    session.outbox.logAck(key, committed, resend);
    if (active.pendingReport && committed >= active.pendingReport.logSize) {
      await this.finish(session, active, active.pendingReport);
    }
  }

  /**
   * Records an attempt's end once every log byte it produced is committed (until then the report
   * waits for the missing chunks), then acknowledges it.
   */
  async finished(session: AgentSession, key: AttemptKey, report: AttemptReport): Promise<void> {
    const active = this.current(session, key);
    if (!active) return;
    const committed = (await this.o.logs.size(key.taskId)) - active.logBase;
    if (committed < report.logSize) {
      active.pendingReport = report;
      session.outbox.logAck(key, committed, true);
      return;
    }
    await this.finish(session, active, report);
  }

  /** Stops a task: at once when waiting, through its agent when running. */
  async stop(task: TaskRecord): Promise<boolean> {
    const now = this.now();
    if (task.status === "waiting") {
      const stopped = await this.o.store.tasks.stopWaiting(task.id, now);
      if (!stopped) return false;
      await this.publishTask("task.stopped", stopped);
      return true;
    }
    const stopping = await this.o.store.tasks.requestStop(task.id, now);
    if (!stopping) return false;
    const key = { taskId: task.id, attempt: task.attempt, leaseId: task.leaseId };
    this.stopPushed.add(keyOf(key));
    this.sessions.get(task.nodeId)?.outbox.cancel(key, "stop-requested");
    await this.publishTask("task.stop", stopping);
    return true;
  }

  /** Sends the drain state to the node's live stream and dispatches accordingly. */
  setDraining(node: NodeRecord): void {
    const session = this.sessions.get(node.id);
    if (session) {
      session.node = node;
      session.outbox.drain(node.draining);
    }
    this.kick();
  }

  /** Closes the node's stream, if any (the node was removed). */
  forget(nodeId: string): void {
    const session = this.sessions.get(nodeId);
    if (session) {
      session.closed = true;
      session.outbox.close();
    }
    this.sessions.delete(nodeId);
  }

  /** Says why a waiting task has not been dispatched, from the connected agents. */
  explainWaiting(task: TaskRecord): string {
    if (task.status !== "waiting") return "";
    if (task.notBefore > this.now()) return `scheduled to start at ${new Date(task.notBefore).toISOString()}`;
    const executor = executorForTaskType(task.definition.type);
    let candidates = [...this.sessions.values()];
    if (candidates.length === 0) return "no agent is connected";
    candidates = candidates.filter((s) => executor !== undefined && s.capabilities.executors.includes(executor));
    if (candidates.length === 0) {
      return `no connected agent offers executor ${executor ?? "unknown"} (tasks of type "${task.definition.type}" need it)`;
    }
    candidates = candidates.filter((s) => s.capabilities.queues.some((q) => q.queue === task.queue));
    if (candidates.length === 0) return `no connected agent serves queue "${task.queue}"`;
    const labels = Object.entries(task.definition.labels);
    candidates = candidates.filter((s) => labels.every(([k, v]) => s.capabilities.labels[k] === v));
    if (candidates.length === 0) return `no connected agent has the labels ${labels.map(([k, v]) => `${k}=${v}`).join(", ")}`;
    if (task.targetNode) {
      const re = this.targetPattern(task.targetNode);
      candidates = candidates.filter((s) => re.test(s.node.name));
      if (candidates.length === 0) return `no connected agent's name matches "${task.targetNode}"`;
    }
    if (candidates.every((s) => s.node.draining)) return "every matching agent is draining";
    return "waiting for a free slot on a matching agent";
  }

  /** Schedules a dispatch pass; newWork says a waiting task may have appeared. */
  kick(newWork = false): void {
    if (newWork) this.maybeWaiting = true;
    if (!this.maybeWaiting) return;
    this.dirty = true;
    if (!this.dispatching) {
      this.dispatching = true;
      setImmediate(() => void this.dispatchLoop());
    }
  }

  private async dispatchLoop(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        await this.dispatchPass();
      }
    } catch (err) {
      this.o.logger.error({ err }, "dispatch pass failed");
    } finally {
      this.dispatching = false;
    }
  }

  private async dispatchPass(): Promise<void> {
    if (!this.maybeWaiting) return;
    if (!(await this.o.store.tasks.hasWaiting())) {
      this.maybeWaiting = false;
      return;
    }
    const ready = [...this.sessions.values()].filter((s) => s.credit > 0 && !s.node.draining && !s.closed);
    if (ready.length === 0) return;
    const executors = new Set(ready.flatMap((s) => s.capabilities.executors));
    const queues = new Set(
      ready.flatMap((s) =>
        s.capabilities.queues.filter((q) => (s.runningByQueue.get(q.queue) ?? 0) < q.slots).map((q) => q.queue),
      ),
    );
    const credit = ready.reduce((sum, s) => sum + s.credit, 0);
    const limit = Math.min(WAITING_PAGE, Math.max(64, credit * 8));
    const waiting = await this.o.store.tasks.listWaiting({
      now: this.now(),
      queues: [...queues],
      types: TASK_TYPES.filter((t) => executors.has(executorForTaskType(t) ?? "")),
      perOwner: Math.max(credit, 1),
      limit,
    });
    let assigned = 0;
    for (const task of this.fairOrder(waiting)) {
      let best: AgentSession | undefined;
      for (const s of ready) {
        if (s.credit > 0 && !s.closed && (!best || s.credit > best.credit) && this.matches(s, task)) best = s;
      }
      if (best && (await this.assign(best, task))) assigned++;
      if (!ready.some((s) => s.credit > 0)) return;
    }
    // A full page that yielded work may hide more matching tasks behind it.
    if (assigned > 0 && waiting.length === limit) this.dirty = true;
  }

  /**
   * Round robin across owners, the owner served longest ago first: each owner's oldest task, then
   * each owner's second oldest, and so on. The store's order is FIFO within an owner.
   */
  private fairOrder(waiting: TaskRecord[]): TaskRecord[] {
    const byOwner = new Map<string, TaskRecord[]>();
    for (const task of waiting) {
      const list = byOwner.get(task.ownerId);
      if (list) list.push(task);
      else byOwner.set(task.ownerId, [task]);
    }
    const owners = [...byOwner.entries()].sort(
      ([a, ta], [b, tb]) =>
        (this.lastServed.get(a) ?? 0) - (this.lastServed.get(b) ?? 0) || (ta[0]?.seq ?? 0) - (tb[0]?.seq ?? 0),
    );
    const ordered: TaskRecord[] = [];
    for (let rank = 0; ordered.length < waiting.length; rank++) {
      for (const [, tasks] of owners) {
        const task = tasks[rank];
        if (task) ordered.push(task);
      }
    }
    return ordered;
  }

  /** The compiled target-node pattern (validated at task creation), compiled once per text. */
  private targetPattern(source: string): RegExp {
    let pattern = this.targetPatterns.get(source);
    if (!pattern) {
      if (this.targetPatterns.size >= 1000) this.targetPatterns.clear();
      pattern = new RegExp(source);
      this.targetPatterns.set(source, pattern);
    }
    return pattern;
  }

  private matches(s: AgentSession, task: TaskRecord): boolean {
    const executor = executorForTaskType(task.definition.type);
    if (executor === undefined || !s.capabilities.executors.includes(executor)) return false;
    const queue = s.capabilities.queues.find((q) => q.queue === task.queue);
    if (!queue || (s.runningByQueue.get(task.queue) ?? 0) >= queue.slots) return false;
    for (const [k, v] of Object.entries(task.definition.labels)) if (s.capabilities.labels[k] !== v) return false;
    return !task.targetNode || this.targetPattern(task.targetNode).test(s.node.name);
  }

  private async assign(session: AgentSession, task: TaskRecord): Promise<boolean> {
    const now = this.now();
    const key: AttemptKey = { taskId: task.id, attempt: task.attempt + 1, leaseId: newId() };
    // A later attempt's output follows a marker line, appended only once the claim is won: with
    // other servers, a server that loses the race must not have written to the log.
    const previousSize = task.attempt === 0 ? 0 : await this.o.logs.size(task.id);
    let marker: Buffer | undefined;
    if (key.attempt > 1) {
      const newline = previousSize > 0 && (await this.o.logs.read(task.id, previousSize - 1, 1))[0] !== 0x0a ? "\n" : "";
      marker = Buffer.from(`${newline}--- attempt ${key.attempt} on ${session.node.name} ---\n`);
    }
    const logBase = previousSize + (marker?.length ?? 0);
    // The attempt's task token: only its hash is stored; the secret travels once, in the assignment.
    const taskToken = generateSecret("mtt");
    const assigned = await this.o.store.tasks.assign({
      taskId: task.id,
      fromAttempt: task.attempt,
      nodeId: session.node.id,
      leaseId: key.leaseId,
      leaseExpireTime: now + this.o.leaseTtlMs,
      logBase,
      tokenHash: hashSecret(taskToken),
      now,
    });
    if (!assigned) return false;
    if (marker) await this.o.logs.append(task.id, previousSize, marker);
    session.credit--;
    this.lastServed.set(task.ownerId, ++this.serveCounter);
    session.runningByQueue.set(task.queue, (session.runningByQueue.get(task.queue) ?? 0) + 1);
    this.active.set(keyOf(key), {
      key,
      nodeId: session.node.id,
      queue: task.queue,
      logBase,
      deadline: deadlineOf(task, now),
      assignTime: now,
    });
    // A waiting task's updateTime is when it became waiting (created, requeued, restarted).
    this.o.metrics?.dispatched(now - Math.max(task.notBefore, task.updateTime));
    // The event is stored first, so that task.assigned always precedes what the agent reports.
    await this.publishTask("task.assigned", assigned, { node_id: session.node.id, attempt: String(key.attempt) });
    session.outbox.assign({ key, definition: task.definition, environment: taskEnvironment(task, key.attempt), taskToken });
    return true;
  }

  /** The active attempt a message is about, or undefined after telling the agent to drop it. */
  private current(session: AgentSession, key: AttemptKey): ActiveAttempt | undefined {
    const active = this.active.get(keyOf(key));
    if (active && active.key.leaseId === key.leaseId && active.nodeId === session.node.id) return active;
    session.outbox.cancel(key, "lease-lost");
    return undefined;
  }

  private async finish(session: AgentSession, active: ActiveAttempt, report: AttemptReport): Promise<void> {
    const task = await this.o.store.tasks.get(active.key.taskId);
    if (!task) return;
    let taskStatus: TaskState = "done";
    let { result, error } = report;
    let scriptRetries = task.scriptRetries;
    if (task.status === "stop") {
      taskStatus = "stopped";
      result = "error";
      error = report.error || "stopped by request";
    } else if (report.result === "failed" && scriptRetries < task.definition.retry) {
      taskStatus = "waiting";
      scriptRetries++;
    } else if (result === "success" && this.o.onSuccess) {
      const note = await this.o.onSuccess(task);
      if (note) error = error ? `${error}; ${note}` : note;
    }
    await this.endAttempt(active, task, {
      result,
      exitCode: report.exitCode,
      error,
      taskStatus,
      infraFailures: task.infraFailures,
      scriptRetries,
    });
    session.outbox.finishAck(active.key);
  }

  private async endAttempt(
    active: ActiveAttempt,
    task: TaskRecord,
    end: {
      result: TaskOutcome;
      exitCode: number | null;
      error: string;
      taskStatus: TaskState;
      infraFailures: number;
      scriptRetries: number;
    },
  ): Promise<void> {
    const ended = await this.o.store.tasks.endAttempt({
      taskId: active.key.taskId,
      attempt: active.key.attempt,
      leaseId: active.key.leaseId,
      logSize: await this.o.logs.size(task.id),
      now: this.now(),
      ...end,
    });
    const tracked = this.active.delete(keyOf(active.key));
    this.stopPushed.delete(keyOf(active.key));
    const session = this.sessions.get(active.nodeId);
    if (session && tracked) {
      const running = (session.runningByQueue.get(active.queue) ?? 1) - 1;
      session.runningByQueue.set(active.queue, Math.max(0, running));
    }
    if (!ended) return;
    if (active.assignTime !== undefined) this.o.metrics?.attemptEnded(end.result, this.now() - active.assignTime);
    if (end.taskStatus !== "waiting") this.o.metrics?.taskFinished(end.result);
    void this.o.logs.seal(task.id);
    const type = end.taskStatus === "waiting" ? "task.requeued" : end.taskStatus === "stopped" ? "task.stopped" : "task.finished";
    await this.publishTask(type, ended, { attempt: String(active.key.attempt), result: end.result });
    this.kick(end.taskStatus === "waiting");
  }

  private async loseAttempt(active: ActiveAttempt, why: string): Promise<void> {
    const task = await this.o.store.tasks.get(active.key.taskId);
    if (!task) {
      this.active.delete(keyOf(active.key));
      return;
    }
    const requeue = task.status !== "stop" && task.infraFailures < this.o.maxInfraRetries;
    await this.endAttempt(active, task, {
      result: "error",
      exitCode: null,
      error: why,
      taskStatus: task.status === "stop" ? "stopped" : requeue ? "waiting" : "done",
      infraFailures: task.infraFailures + 1,
      scriptRetries: task.scriptRetries,
    });
    this.o.logger.warn({ taskId: task.id, attempt: active.key.attempt, requeue }, why);
  }

  private async sweep(): Promise<void> {
    const now = this.now();
    if (this.heartbeats.size > 0) {
      const batch = this.heartbeats;
      this.heartbeats = new Map();
      await this.o.store.nodes.setHeartbeats(batch);
    }
    // Tasks whose eta passed become dispatchable without any other event; with other servers,
    // this also finds work whose event this server missed.
    this.kick(this.o.shared);
    for (const active of this.active.values()) {
      if (active.deadline !== 0 && active.deadline <= now) {
        active.deadline = 0;
        this.sessions.get(active.nodeId)?.outbox.cancel(active.key, "timeout");
      }
    }
    for (const task of await this.o.store.tasks.listExpiredLeases(this.now())) {
      // An attempt another server tracked (it may be dead) is ended here: the store's
      // compare-and-set on the lease lets only one server end it.
      const active = this.active.get(keyOf({ taskId: task.id, attempt: task.attempt, leaseId: task.leaseId })) ?? {
        key: { taskId: task.id, attempt: task.attempt, leaseId: task.leaseId },
        nodeId: task.nodeId,
        queue: task.queue,
        logBase: 0,
        deadline: 0,
      };
      this.sessions.get(active.nodeId)?.outbox.cancel(active.key, "lease-lost");
      this.o.metrics?.leaseExpired();
      await this.loseAttempt(active, "lease expired: the agent stopped renewing it");
    }
  }

  private async publishTask(type: string, task: TaskRecord, attributes: Record<string, string> = {}): Promise<void> {
    await this.o.events.publish(type, task.id, { kind: "task", value: task }, attributes);
  }
}
