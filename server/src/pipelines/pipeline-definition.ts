import { compilePipelineGraph, type PipelineSpec } from "@mottainai/proto";
import { definitionFromSpec } from "../convert/task-convert.js";
import type { MemberRecord, PipelineDefinition, PipelineRecord } from "../store/pipeline-store.js";

/**
 * The stored definition of a validated pipeline spec (validatePipelineSpec): members in the
 * file's order, each with its task as written (its own `depends_on` kept in the task
 * definition) and its compiled parents.
 */
export function definitionFromPipelineSpec(spec: PipelineSpec): PipelineDefinition {
  const graph = compilePipelineGraph(spec);
  return {
    name: spec.pipelineName,
    queue: spec.queue,
    concurrency: spec.concurrency,
    chain: [...spec.chain],
    group: [...spec.group],
    chord: [...spec.chord],
    members: graph.order.map((key) => {
      const task = spec.tasks[key];
      if (!task) throw new Error(`definitionFromPipelineSpec: no task ${key}`);
      return {
        key,
        definition: { ...definitionFromSpec(task), dependsOn: [...task.dependsOn], inheritArtefacts: task.inheritArtefacts },
        dependsOn: [...(graph.parents[key] ?? [])],
        inheritArtefacts: task.inheritArtefacts,
      };
    }),
  };
}

/** What a pipeline event carries: the pipeline and its members. */
export interface PipelineSnapshot {
  pipeline: PipelineRecord;
  members: MemberRecord[];
}

/**
 * The copy of a pipeline stored in its events: its state and members, with every member task's
 * script, entrypoint, environment, private key and binds removed (as taskSnapshot does: events
 * reach every subscriber).
 */
export function pipelineSnapshot(pipeline: PipelineRecord, members: MemberRecord[]): PipelineSnapshot {
  return {
    pipeline: {
      ...pipeline,
      definition: {
        ...pipeline.definition,
        members: pipeline.definition.members.map((m) => ({
          ...m,
          definition: { ...m.definition, script: [], entrypoint: [], environment: [], privkey: "", binds: [] },
        })),
      },
    },
    members,
  };
}
