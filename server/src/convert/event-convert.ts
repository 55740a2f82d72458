import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventSchema, type Event } from "@mottainai/proto";
import type { EventRecord } from "../store/event-store.js";
import type { NodeRecord } from "../store/node-store.js";
import type { TaskRecord } from "../store/task-store.js";
import type { PipelineSnapshot } from "../pipelines/index.js";
import { nodeToProto } from "./node-convert.js";
import { pipelineToProto } from "./pipeline-convert.js";
import { taskToProto } from "./task-convert.js";

/** The wire form of a stored event, with its task, node or pipeline snapshot. */
export function eventToProto(e: EventRecord): Event {
  const payload: Event["payload"] =
    e.payloadKind === "task" && e.payload
      ? { case: "task", value: taskToProto(e.payload as TaskRecord) }
      : e.payloadKind === "node" && e.payload
        ? { case: "node", value: nodeToProto(e.payload as NodeRecord, e.type !== "node.disconnected", []) }
        : e.payloadKind === "pipeline" && e.payload
          ? {
              case: "pipeline",
              value: pipelineToProto((e.payload as PipelineSnapshot).pipeline, (e.payload as PipelineSnapshot).members),
            }
          : { case: undefined };
  return create(EventSchema, {
    sequence: BigInt(e.sequence),
    time: timestampFromMs(e.time),
    type: e.type,
    subjectId: e.subjectId,
    payload,
    attributes: e.attributes,
  });
}
