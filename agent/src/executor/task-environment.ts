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
