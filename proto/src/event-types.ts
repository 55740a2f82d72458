/**
 * One kind of event on EventService (Event.type): what its subject is, which payload it carries
 * and which attributes it sets. Attributes are strings; a missing one reads as "".
 */
export interface EventTypeInfo {
  type: string;
  /** What Event.subject_id names. */
  subject: "task" | "node" | "namespace" | "delivery" | "storage" | "token" | "user" | "pipeline" | "plan";
  /** Which Event.payload case is set ("" when none). */
  payload: "task" | "node" | "pipeline" | "";
  /** Attribute keys the event sets (beyond these, none). */
  attributes: readonly string[];
  /** When it is appended. */
  description: string;
}

const task = (type: string, attributes: readonly string[], description: string): EventTypeInfo => ({
  type,
  subject: "task",
  payload: "task",
  attributes,
  description,
});
const node = (type: string, description: string): EventTypeInfo => ({
  type,
  subject: "node",
  payload: "node",
  attributes: [],
  description,
});
const delivery = (type: string, extra: readonly string[], description: string): EventTypeInfo => ({
  type,
  subject: "delivery",
  payload: "",
  attributes: ["namespace", "publisher_id", "kind", "tag", "revision", "attempt", ...extra],
  description,
});

const pipeline = (type: string, attributes: readonly string[], description: string): EventTypeInfo => ({
  type,
  subject: "pipeline",
  payload: type === "pipeline.deleted" ? "" : "pipeline",
  attributes: ["owner_id", ...attributes],
  description,
});
const plan = (type: string, attributes: readonly string[], description: string): EventTypeInfo => ({
  type,
  subject: "plan",
  payload: "",
  attributes: ["plan_id", "owner_id", ...attributes],
  description,
});

/**
 * Every event kind the server appends, in one place (docs/events.md explains them for people).
 * Bridges use it to validate the type filters of their configuration; the server's tests check
 * that every type it publishes is listed. Tokens and secrets never appear in an event: a token
 * event carries the token's id and name, a task payload has no script, environment or key.
 *
 * Subscribers see only the events about what they may read: admins and managers everything;
 * a user the events of their own tasks, tokens and storages and of the namespaces they may read
 * (with those namespaces' deliveries); node and user events are for admins and managers.
 * Agents (node credentials) cannot subscribe.
 */
export const EVENT_TYPES: readonly EventTypeInfo[] = [
  pipeline("pipeline.created", [], "a pipeline was created (CreatePipeline, or a plan firing one); payload: its snapshot"),
  pipeline("pipeline.started", ["run"], "its first member task was created, or RetryPipeline started a new run"),
  pipeline("pipeline.finished", [], "every member ended; the snapshot's status and result are the pipeline's"),
  pipeline("pipeline.stopped", [], "StopPipeline: members not started were skipped and running ones stopped"),
  pipeline("pipeline.deleted", [], "the pipeline and its finished member tasks were removed"),
  plan("plan.created", [], "a plan was created"),
  plan("plan.updated", [], "a plan's spec changed (UpdatePlan)"),
  plan("plan.paused", [], "a plan stopped firing (PausePlan)"),
  plan("plan.resumed", [], "a paused plan fires again from its next occurrence (ResumePlan)"),
  plan("plan.deleted", [], "a plan was removed"),
  plan(
    "plan.fired",
    ["scheduled_time", "fire_time", "target_id", "kind", "manual"],
    "an occurrence (or RunPlan, manual true) created its task or pipeline, once cluster-wide",
  ),
  task("task.created", [], "a task was created (CreateTask, or a pipeline or plan creating one)"),
  task("task.restarted", [], "a finished task was queued again (RestartTask)"),
  task("task.assigned", ["node_id", "attempt"], "an attempt of the task was pushed to an agent"),
  task("task.running", [], "the agent started the task's script"),
  task("task.stop", [], "a stop was requested for a running task; the agent is told to stop it"),
  task("task.stopped", ["attempt", "result"], "the task stopped (waiting tasks stop at once)"),
  task("task.finished", ["attempt", "result"], "the task ended: status done, result success, failed or error"),
  task("task.requeued", ["attempt", "result"], "an attempt was lost to infrastructure and the task waits again"),
  {
    type: "task.deleted",
    subject: "task",
    payload: "",
    attributes: ["owner_id", "pipeline_id", "reason"],
    description: "the task was removed (DeleteTask, or reason retention)",
  },
  {
    type: "artefact.uploaded",
    subject: "task",
    payload: "",
    attributes: ["task_id", "owner_id", "pipeline_id", "path", "size", "sha256"],
    description: "a running task committed an artefact (its sha256 verified)",
  },
  node("node.registered", "an agent registered with a registration token"),
  node("node.connected", "an agent's stream was accepted"),
  node("node.disconnected", "an agent's stream ended"),
  node("node.drained", "a node stopped taking new tasks"),
  node("node.resumed", "a drained node takes tasks again"),
  node("node.removed", "a node and its credential were removed"),
  {
    type: "namespace.created",
    subject: "namespace",
    payload: "",
    attributes: ["namespace", "owner_id", "visibility"],
    description: "a namespace was created",
  },
  {
    type: "namespace.published",
    subject: "namespace",
    payload: "",
    attributes: ["namespace", "owner_id", "revision", "tag", "creator_id", "message"],
    description: "a publish (upload, remove, task artefacts, clone) committed a new revision",
  },
  {
    type: "namespace.tag_moved",
    subject: "namespace",
    payload: "",
    attributes: ["namespace", "tag", "revision", "previous"],
    description: "a tag points at another revision (publish, SetTag, rollback); previous 0 when new",
  },
  {
    type: "namespace.tag_deleted",
    subject: "namespace",
    payload: "",
    attributes: ["namespace", "tag", "revision"],
    description: "a tag was removed",
  },
  {
    type: "namespace.deleted",
    subject: "namespace",
    payload: "",
    attributes: ["namespace", "owner_id"],
    description: "a namespace was removed",
  },
  {
    type: "namespace.publish_failed",
    subject: "task",
    payload: "",
    attributes: ["namespace", "task_id", "owner_id", "error"],
    description: "a successful task's artefacts could not be published to its tag_namespace",
  },
  delivery("delivery.queued", ["reason"], "a tag move (or RetryDelivery, reason retry) queued a delivery"),
  delivery("delivery.superseded", [], "a newer tag move replaced a delivery that had not succeeded"),
  delivery("delivery.started", [], "a delivery attempt started"),
  delivery("delivery.succeeded", [], "the publisher's target holds the revision"),
  delivery("delivery.retrying", ["error", "next_attempt_time"], "an attempt failed; another runs at next_attempt_time"),
  delivery("delivery.failed", ["error"], "the last attempt failed"),
  {
    type: "storage.created",
    subject: "storage",
    payload: "",
    attributes: ["storage", "owner_id"],
    description: "a storage was created",
  },
  {
    type: "storage.deleted",
    subject: "storage",
    payload: "",
    attributes: ["storage", "owner_id"],
    description: "a storage was removed",
  },
  {
    type: "storage.file_uploaded",
    subject: "storage",
    payload: "",
    attributes: ["storage", "owner_id", "path", "size", "sha256"],
    description: "a file was stored in a storage",
  },
  {
    type: "storage.files_removed",
    subject: "storage",
    payload: "",
    attributes: ["storage", "owner_id", "paths"],
    description: "files were removed from a storage (paths: comma-separated)",
  },
  {
    type: "token.created",
    subject: "token",
    payload: "",
    attributes: ["owner_id", "name"],
    description: "an API token was created (never its secret)",
  },
  {
    type: "token.deleted",
    subject: "token",
    payload: "",
    attributes: ["owner_id", "name"],
    description: "an API token was revoked",
  },
  {
    type: "user.created",
    subject: "user",
    payload: "",
    attributes: ["name", "role"],
    description: "a user was created",
  },
];

/** The type names of EVENT_TYPES. */
export const EVENT_TYPE_NAMES: ReadonlySet<string> = new Set(EVENT_TYPES.map((t) => t.type));

/**
 * Subject of a gap marker: the `type` a bridge library reports for an EventGap (SubscribeResponse
 * gap), so that handlers keyed by type can react to lost history.
 */
export const EVENT_GAP_TYPE = "events.gap";
