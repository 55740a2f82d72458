import type { EventRecord } from "../store/event-store.js";
import type { TaskRecord } from "../store/task-store.js";

/**
 * The server-side filters of Subscribe and ListEvents (proto EventFilter plus the type
 * prefixes). Empty fields match everything; every set field must match.
 */
export interface EventFilterSpec {
  /** Type prefixes ("task.", "namespace.published"); any when empty. */
  types: string[];
  subjectIds: string[];
  ownerId: string;
  namespace: string;
  pipelineId: string;
}

/** A filter that matches every event. */
export const ALL_EVENTS: EventFilterSpec = { types: [], subjectIds: [], ownerId: "", namespace: "", pipelineId: "" };

const taskOf = (e: EventRecord): TaskRecord | undefined =>
  e.payloadKind === "task" && e.payload ? (e.payload as TaskRecord) : undefined;

/** Who owns what the event is about: a task's owner, else the `owner_id` attribute ("" when unknown). */
export function eventOwner(e: EventRecord): string {
  return taskOf(e)?.ownerId ?? e.attributes.owner_id ?? "";
}

/** The namespace the event is about: the `namespace` attribute, else a task's tag_namespace. */
export function eventNamespace(e: EventRecord): string {
  return e.attributes.namespace || (taskOf(e)?.definition.tagNamespace ?? "");
}

/** The pipeline the event is about: a pipeline.* subject, a task's pipeline, else `pipeline_id`. */
export function eventPipeline(e: EventRecord): string {
  if (e.type.startsWith("pipeline.")) return e.subjectId;
  return taskOf(e)?.pipelineId || e.attributes.pipeline_id || "";
}

/** Whether the event passes the filter (read rights are checked apart: event-access.ts). */
export function matchesFilter(e: EventRecord, f: EventFilterSpec): boolean {
  if (f.types.length > 0 && !f.types.some((t) => e.type.startsWith(t))) return false;
  if (f.subjectIds.length > 0 && !f.subjectIds.includes(e.subjectId)) return false;
  if (f.ownerId && eventOwner(e) !== f.ownerId) return false;
  if (f.namespace && eventNamespace(e) !== f.namespace) return false;
  if (f.pipelineId && eventPipeline(e) !== f.pipelineId) return false;
  return true;
}
