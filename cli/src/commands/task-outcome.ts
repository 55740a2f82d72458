import type { Client } from "@connectrpc/connect";
import { TaskResult, TaskService, TaskStatus } from "@mottainai/proto";
import { taskResultWord, taskStatusWord } from "../format.js";
import { requireField } from "../require-field.js";

/**
 * Streams task `id`'s log from its start to `write` until the task has ended and every byte was
 * written (FollowTaskLog with follow), then reads how it ended. Resolves `undefined` when it
 * ended done/success, otherwise with its outcome as `<status>/<result>` plus the exit code when
 * there is one (`done/failed (exit code 3)`, `stopped/none`): what `task create --monitor`
 * reports before exiting 1.
 */
export async function followTaskToEnd(
  client: Client<typeof TaskService>,
  id: string,
  write: (data: Uint8Array) => Promise<void>,
): Promise<string | undefined> {
  for await (const chunk of client.followTaskLog({ id, offset: 0n, follow: true })) await write(chunk.data);
  const task = requireField((await client.getTask({ id })).task, "task");
  if (task.status === TaskStatus.DONE && task.result === TaskResult.SUCCESS) return undefined;
  const exit = task.exitCode === undefined ? "" : ` (exit code ${task.exitCode})`;
  return `${taskStatusWord(task.status)}/${taskResultWord(task.result)}${exit}`;
}
