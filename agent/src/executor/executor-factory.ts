import type { ExecutorFactory } from "./executor.js";
import { createFakeExecutor } from "./fake-executor.js";
import { createHostExecutor, type HostExecutorOptions } from "./host-executor.js";

/** Executor kinds this agent build has, in the order it advertises them by default. */
export const BUILTIN_EXECUTORS: readonly string[] = ["host", "fake"];

/** Options of createExecutorFactory. */
export type ExecutorFactoryOptions = HostExecutorOptions;

/** The factory for the built-in executors: `host` (createHostExecutor) and `fake` (createFakeExecutor). */
export function createExecutorFactory(options: ExecutorFactoryOptions = {}): ExecutorFactory {
  return (kind, input) => {
    switch (kind) {
      case "host":
        return createHostExecutor(input, options);
      case "fake":
        return createFakeExecutor(input);
      default:
        return undefined;
    }
  };
}
