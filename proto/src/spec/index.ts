export { SpecError, type SpecIssue } from "./spec-error.js";
export { parseTaskFile, splitEnvironmentEntry, validateTaskSpec } from "./task-file.js";
export { parsePipelineFile } from "./pipeline-file.js";
export { parsePlanFile, scheduleProblem, timezoneProblem } from "./plan-file.js";
