export { SpecError, type SpecIssue } from "./spec-error.js";
export { formatSpecWarning } from "./spec-warnings.js";
export { checkoutPathProblem, checkoutRelativePath } from "./checkout-path.js";
export {
  normalizeTaskPaths,
  parseTaskFile,
  parseTaskFileWithWarnings,
  splitEnvironmentEntry,
  taskSpecWarnings,
  validateTaskSpec,
  type Parsed,
} from "./task-file.js";
export { overrideTaskSpec } from "./task-overrides.js";
export { parsePipelineFile, parsePipelineFileWithWarnings, validatePipelineSpec } from "./pipeline-file.js";
export { compilePipelineGraph, topologicalOrder, type PipelineGraph } from "./pipeline-graph.js";
export { parsePlanFile, parsePlanFileWithWarnings, scheduleProblem, timezoneProblem } from "./plan-file.js";
