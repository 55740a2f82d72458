import { TaskService } from "@mottainai/proto";
import { Command, Option } from "clipanion";
import { monitorTasks } from "../monitor-tasks.js";
import { MottainaiCommand } from "./mottainai-command.js";

/** `mottainai task monitor ID...`: waits for the tasks, streams their logs, exits with their outcome. */
export class TaskMonitorCommand extends MottainaiCommand {
  static override paths = [["task", "monitor"]];
  static override usage = Command.Usage({
    category: "Tasks",
    description: "Wait for tasks to end, streaming their logs; exit 0 only if all ended done/success",
    details:
      "The original's `task monitor`. Each log goes to stdout as it is written, unchanged for one task; with several, every line starts with `ID | `. When a task ends, one line `task ID: STATUS/RESULT` goes to stderr (with the exit code and error when there are any). The exit code is 0 when every task ended done/success and 1 otherwise (failed, error, stopped, unknown id), so scripts can wait on what they started.",
    examples: [
      ["Wait for one task", "$0 task monitor 0123456789abcdef"],
      ["Wait for all tasks a script created", "$0 task monitor $a $b $c"],
    ],
  });

  ids = Option.Rest({ required: 1, name: "ID" });

  async run(): Promise<number> {
    const client = await this.client(TaskService);
    const { exitCode } = await monitorTasks({ client, output: this.output, ids: this.ids, signal: this.context.signal });
    return exitCode;
  }
}

/** The `task monitor` command, for registration with the Cli. */
export const taskMonitorCommands = [TaskMonitorCommand];
