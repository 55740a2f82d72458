/**
 * The lxd executor (issue 19): `type: lxd` tasks in throwaway LXD system containers through
 * the LXD REST API. See docs/lxd-executor.md.
 */
export {
  createLxdClient,
  DEFAULT_LXD_SOCKET,
  LxdError,
  type LxdClient,
  type LxdEndpoint,
  type LxdExec,
  type LxdExecRequest,
  type LxdOperation,
} from "./lxd-client.js";
export { removeLeftoverLxdContainers } from "./lxd-cleanup.js";
export {
  createLxdExecutor,
  LXD_AGENT_KEY,
  LXD_ATTEMPT_KEY,
  LXD_TASK_KEY,
  LXD_WORKSPACE,
  lxdContainerName,
  lxdContainerPrefix,
  type LxdExecutorOptions,
  type LxdImageRemote,
} from "./lxd-executor.js";
export { createLxdImageCache, LXD_CACHE_ALIAS_PREFIX, lxdCacheAlias, type LxdImageCache } from "./lxd-image-cache.js";
export {
  DEFAULT_LXD_POLICY,
  lxdInstanceSettings,
  MIN_LXD_MEMORY,
  type LxdInstanceSettings,
  type LxdPolicy,
} from "./lxd-policy.js";
export {
  lxdInstancesWithPrefix,
  requireLxd,
  requireLxdRemote,
  TEST_LXD_IMAGE,
  TEST_LXD_TLS_DIR,
  TEST_LXD_URL,
} from "./require-lxd.js";
