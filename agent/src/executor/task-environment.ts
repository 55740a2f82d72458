import { splitEnvironmentEntry } from "@mottainai/proto";
import type { ExecutorInput } from "./executor.js";

/**
 * The variables a task sees from the server: the assignment's MOTTAINAI_* map, then the task's
 * own `environment` entries (`K=V`, the value is everything after the first `=`; an entry
 * without `=` sets an empty value; later entries override earlier ones).
 */
export function taskEnvironment(input: Pick<ExecutorInput, "environment" | "spec">): Record<string, string> {
  const env: Record<string, string> = { ...input.environment };
  for (const entry of input.spec.environment) {
    const [key, value] = splitEnvironmentEntry(entry);
    if (key !== "") env[key] = value;
  }
  return env;
}

/**
 * What a task asks for with `CPU=` and `RAM=` in its `environment` entries, as the original read
 * them (the last entry of a name wins); undefined when it does not ask. Each executor checks the
 * values against its own maximums.
 */
export function resourceRequest(environment: readonly string[]): { cpu?: string; ram?: string } {
  const request: { cpu?: string; ram?: string } = {};
  for (const entry of environment) {
    const [key, value] = splitEnvironmentEntry(entry);
    if (key === "CPU") request.cpu = value;
    if (key === "RAM") request.ram = value;
  }
  return request;
}
