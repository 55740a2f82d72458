export { SpecError, type SpecIssue } from "./spec-error.js";
export { parseTaskFile, splitEnvironmentEntry, validateTaskSpec } from "./task-file.js";
export { parsePipelineFile, validatePipelineSpec } from "./pipeline-file.js";
export { compilePipelineGraph, topologicalOrder, type PipelineGraph } from "./pipeline-graph.js";
export { parsePlanFile } from "./plan-file.js";
