import { toJson } from "@bufbuild/protobuf";
import { ArtefactSchema, ArtefactService } from "@mottainai/proto";
import { Command, Option } from "clipanion";
import { downloadFiles } from "../file-transfer.js";
import { parsePathFilters } from "../path-filters.js";
import { directoryArgument, downloadDirectory, downloadFilterDetails, filterOption, toOption } from "./transfer-options.js";
import { MottainaiCommand, jsonOption, requiredArgument } from "./mottainai-command.js";
import { filesTable } from "./storage.js";

const category = "Tasks";

/** `mottainai task artefacts ID [--prefix P] [--json]`: the task's artefacts. */
export class TaskArtefactsCommand extends MottainaiCommand {
  static override paths = [["task", "artefacts"]];
  static override usage = Command.Usage({
    category,
    description: "List a task's artefacts",
    details: "A table of PATH, SIZE (bytes) and SHA256, sorted by path; `--json` prints the Artefact messages.",
  });

  id = requiredArgument();
  prefix = Option.String("--prefix", "", { description: "Only paths starting with this" });
  json = jsonOption();

  async run(): Promise<void> {
    const { artefacts } = await (await this.client(ArtefactService)).listArtefacts({ taskId: this.id, prefix: this.prefix });
    if (this.json) this.output.json(artefacts.map((a) => toJson(ArtefactSchema, a)));
    else filesTable(this.output, artefacts);
  }
}

/** `mottainai task download ID [DIR] [-f REGEX]... [--path P] [--to DIR]`: the task's artefacts (or some), resuming partial files. */
export class TaskDownloadCommand extends MottainaiCommand {
  static override paths = [["task", "download"]];
  static override usage = Command.Usage({
    category,
    description: "Download a task's artefacts (or one path) into a directory",
    details: `Artefacts keep their paths below the directory (default the current one). ${downloadFilterDetails} A partial file left by an interrupted download is resumed from its size; every file is verified against its sha256. A progress bar is drawn on a terminal.`,
    examples: [
      ["Fetch one artefact", "$0 task download 0123456789abcdef --path pkgs/a.tbz2 --to out"],
      ["Fetch the packages only (the original's form)", "$0 task download 0123456789abcdef out -f '\\.tbz2$'"],
    ],
  });

  id = requiredArgument();
  dir = directoryArgument();
  onlyPath = Option.String("--path", { description: "Only this artefact (default every one)" });
  to = toOption();
  filters = filterOption();

  async run(): Promise<void> {
    const to = downloadDirectory(this.dir, this.to);
    const filters = parsePathFilters(this.filters);
    const client = await this.transferClient(ArtefactService);
    const { artefacts } = await client.listArtefacts({ taskId: this.id, prefix: this.onlyPath ?? "" });
    await downloadFiles(this.output, {
      listed: artefacts,
      onlyPath: this.onlyPath,
      missing: `task ${this.id} has no artefact ${this.onlyPath}`,
      filters,
      to,
      open: (a, offset) => client.downloadArtefact({ taskId: this.id, path: a.path, offset: BigInt(offset) }),
    });
  }
}

/** The artefact commands of `task`, for registration with the Cli. */
export const taskArtefactCommands = [TaskArtefactsCommand, TaskDownloadCommand];
