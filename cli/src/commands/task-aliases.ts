import { Command } from "clipanion";
import { TaskLogCommand, TaskRemoveCommand, TaskRestartCommand } from "./task.js";

/** `mottainai task attach ID [--offset N]`: the original's name for `task log ID --follow`. */
export class TaskAttachCommand extends TaskLogCommand {
  static override paths = [["task", "attach"]];
  static override usage = Command.Usage({
    category: "Tasks",
    description: "Stream a task's log until it is done (the original's name for `task log ID --follow`)",
    details:
      "Writes the stored bytes unchanged, then every byte as it is written, and ends once the task is done. Unlike the original it also prints the log of a task that already ended, and it does not poll.",
  });

  override follow = true;
}

/** `mottainai task start ID`: the original's name for `task restart ID`. */
export class TaskStartCommand extends TaskRestartCommand {
  static override paths = [["task", "start"]];
  static override usage = Command.Usage({
    category: "Tasks",
    description: "Run a finished task again as a new attempt; prints its id (the original's name for `task restart`)",
  });
}

/** `mottainai task delete ID`: another name for `task remove`, like `namespace delete` and `storage delete`. */
export class TaskDeleteCommand extends TaskRemoveCommand {
  static override paths = [["task", "delete"]];
  static override usage = Command.Usage({
    category: "Tasks",
    description: "Delete a task that is not running, with its log and artefacts (another name for `task remove`)",
  });
}

/** The original's names of `task` commands, for registration with the Cli. */
export const taskAliasCommands = [TaskAttachCommand, TaskStartCommand, TaskDeleteCommand];
