export { createAgent, DEFAULT_MAX_UNACKED_LOG_BYTES, type Agent, type AgentOptions } from "./agent.js";
export { createAsyncQueue, type AsyncQueue } from "./async-queue.js";
export { createBackoff, type Backoff, type BackoffOptions } from "./backoff.js";
export {
  AGENT_USAGE,
  ConfigError,
  loadAgentConfig,
  type AgentConfig,
  type AgentConfigDefaults,
  type QueueConfig,
} from "./config.js";
export {
  credentialPath,
  obtainCredential,
  readCredential,
  writeCredential,
  type NodeCredential,
  type ObtainCredentialOptions,
} from "./credential-store.js";
export { AgentFatalError } from "./errors.js";
export type { Executor, ExecutorCollection, ExecutorFactory, ExecutorInput, ExecutorResult } from "./executor/executor.js";
export { BUILTIN_EXECUTORS, createExecutorFactory, type ExecutorFactoryOptions } from "./executor/executor-factory.js";
export { createFakeExecutor, fakeOutput, FAKE_OUTPUT_PATTERN } from "./executor/fake-executor.js";
export { createHostExecutor, DEFAULT_PATH, workspaceName, type HostExecutorOptions } from "./executor/host-executor.js";
export { createLogBuffer, DEFAULT_LOG_MEMORY_LIMIT, type LogBuffer, type LogBufferOptions, type LogRange } from "./log-buffer.js";
export { systemTimers, type AgentTimers } from "./timers.js";
export { bearerInterceptor, createServerTransport, type ServerTransport, type ServerTransportOptions } from "./transport.js";
export { agentLabelFor } from "./executor/docker-executor.js";
export {
  createLxdClient,
  lxdContainerPrefix,
  lxdInstancesWithPrefix,
  requireLxd,
  TEST_LXD_IMAGE,
  type LxdClient,
} from "./executor/lxd/index.js";
