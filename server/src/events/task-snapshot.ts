import type { TaskRecord } from "../store/task-store.js";

/**
 * The copy of a task stored in its events: everything about its state, and its definition
 * without the script, entrypoint, environment, private key and binds. Events fan out to every
 * subscriber (bridges, dashboards), so they must not carry what may hold secrets, and they
 * stay small.
 */
export function taskSnapshot(task: TaskRecord): TaskRecord {
  return {
    ...task,
    definition: { ...task.definition, script: [], entrypoint: [], environment: [], privkey: "", binds: [] },
  };
}
