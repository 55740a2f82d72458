export { PipelineAdvancer, pipelineResult, type PipelineAdvancerOptions, type PipelineScheduler } from "./pipeline-advancer.js";
export { definitionFromPipelineSpec, pipelineSnapshot, type PipelineSnapshot } from "./pipeline-definition.js";
export { createPipeline, deletePipeline, retryPipeline, stopPipeline, type PipelineContext } from "./pipeline-operations.js";
