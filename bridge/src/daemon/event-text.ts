import { timestampMs } from "@bufbuild/protobuf/wkt";
import { EVENT_GAP_TYPE, TaskResult, TaskStatus, type Event } from "@mottainai/proto";

/** Default template of task events: "task 01H… hello finished: success (12 s) http://…/tasks/01H…". */
export const DEFAULT_TASK_TEMPLATE = "task {subject} {name} {verb}{outcome} {url}";
/** Default template of the other events: "namespace.tag_moved repo namespace=repo tag=latest …". */
export const DEFAULT_TEMPLATE = "{type} {subject}{attrs}";
/** Default template of a gap marker. */
export const DEFAULT_GAP_TEMPLATE =
  "events {attr.from_sequence}-{attr.to_sequence} are no longer kept by the server: not notified";

const lower = (name: string | undefined, prefix: string) => (name ?? "").replace(prefix, "").toLowerCase();

/** Whole seconds or minutes, as people read them: "12 s", "3 min 4 s". */
function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/**
 * The values a template may use, as `{key}`: type, sequence, subject, kind ("task"), verb
 * ("finished"), name (task name), status, result, outcome (": success (12 s)" for ended tasks),
 * duration, url (webUrl/tasks/<id>, webUrl/namespaces/<name>, else webUrl), attrs (" k=v …"),
 * and attr.<key> for each attribute.
 */
export function templateValues(e: Event, webUrl: string): Record<string, string> {
  const dot = e.type.indexOf(".");
  const values: Record<string, string> = {
    type: e.type,
    sequence: String(e.sequence),
    subject: e.subjectId,
    kind: dot < 0 ? e.type : e.type.slice(0, dot),
    verb: dot < 0 ? "" : e.type.slice(dot + 1),
    attrs: Object.entries(e.attributes)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => ` ${k}=${v}`)
      .join(""),
    url: webUrl,
    name: "",
    status: "",
    result: "",
    outcome: "",
    duration: "",
  };
  for (const [k, v] of Object.entries(e.attributes)) values[`attr.${k}`] = v;
  if (e.type.startsWith("task.")) values.url = `${webUrl}/tasks/${e.subjectId}`;
  if (e.type.startsWith("namespace.") && e.attributes.namespace) values.url = `${webUrl}/namespaces/${e.attributes.namespace}`;
  if (e.payload.case === "task") {
    const t = e.payload.value;
    values.name = t.spec?.name ?? "";
    values.status = lower(TaskStatus[t.status], "");
    values.result = t.result === TaskResult.UNSPECIFIED ? "" : lower(TaskResult[t.result], "");
    if (t.startTime && t.endTime) values.duration = duration(timestampMs(t.endTime) - timestampMs(t.startTime));
    const ended = ["task.finished", "task.stopped", "task.requeued"].includes(e.type);
    if (ended && values.result) values.outcome = `: ${values.result}${values.duration ? ` (${values.duration})` : ""}`;
  }
  return values;
}

/** The default template for an event. */
export function defaultTemplate(e: Event): string {
  if (e.type === EVENT_GAP_TYPE) return DEFAULT_GAP_TEMPLATE;
  return e.payload.case === "task" ? DEFAULT_TASK_TEMPLATE : DEFAULT_TEMPLATE;
}

/** Fills `{key}` placeholders (unknown keys become ""), on one line, spaces collapsed. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template
    .replace(/\{([a-z_.]+)\}/gi, (_, key: string) => values[key] ?? "")
    .replace(/[\r\n]+/g, " ")
    .replace(/ {2,}/g, " ")
    .trim();
}

/** One line for the event: the notifier's template, else the default for the event. */
export function eventText(e: Event, webUrl: string, template?: string): string {
  return renderTemplate(template ?? defaultTemplate(e), templateValues(e, webUrl));
}
