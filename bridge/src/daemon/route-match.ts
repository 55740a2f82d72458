import { EVENT_GAP_TYPE, type Event } from "@mottainai/proto";
import type { BridgeFilter } from "../create-bridge.js";

/**
 * Whether an event passes a route's filter, with the server's rules (docs/events.md, Filters):
 * type prefixes, subject ids, owner (task owner or `owner_id`), namespace (`namespace` or the
 * task's tag_namespace) and pipeline. A gap marker passes every route whose types are empty or
 * name "events.".
 */
export function routeMatches(f: BridgeFilter, e: Event): boolean {
  const task = e.payload.case === "task" ? e.payload.value : undefined;
  if (f.types?.length && !f.types.some((t) => e.type.startsWith(t))) return false;
  if (e.type === EVENT_GAP_TYPE) return true;
  if (f.subjectIds?.length && !f.subjectIds.includes(e.subjectId)) return false;
  if (f.ownerId && (task?.ownerId ?? e.attributes.owner_id ?? "") !== f.ownerId) return false;
  if (f.namespace && (e.attributes.namespace || task?.spec?.tagNamespace || "") !== f.namespace) return false;
  if (f.pipelineId) {
    const pipeline = e.type.startsWith("pipeline.") ? e.subjectId : task?.pipelineId || e.attributes.pipeline_id || "";
    if (pipeline !== f.pipelineId) return false;
  }
  return true;
}
