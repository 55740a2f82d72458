import { NamespaceService } from "@mottainai/proto";
import { Command, Option } from "clipanion";
import { requireField } from "../require-field.js";
import { MottainaiCommand, requiredArgument } from "./mottainai-command.js";
import { namespaceCategory as category, revisionLine } from "./namespace.js";

/** `mottainai namespace clone FROM TO [--ref REF]`. */
export class NamespaceCloneCommand extends MottainaiCommand {
  static override paths = [["namespace", "clone"]];
  static override usage = Command.Usage({
    category,
    description: "Create a namespace whose first revision is a revision of another (latest by default)",
  });

  from = requiredArgument("FROM");
  to = requiredArgument("TO");
  ref = Option.String("--ref", "", { description: "Tag or revision of FROM (default latest)" });

  async run(): Promise<void> {
    const { namespace } = await (
      await this.client(NamespaceService)
    ).cloneNamespace({
      fromName: this.from,
      fromRef: this.ref,
      toName: this.to,
    });
    this.output.line(requireField(namespace, "namespace").name);
  }
}
/** `mottainai namespace publish NAME TASK [--append] [--tag TAG]`: a task's artefacts as a revision. */
export class NamespacePublishCommand extends MottainaiCommand {
  static override paths = [["namespace", "publish"]];
  static override usage = Command.Usage({
    category,
    description: "Publish a task's artefacts as a new revision (replacing the files, or with --append adding to them)",
  });

  name = requiredArgument("NAME");
  task = requiredArgument("TASK");
  append = Option.Boolean("--append", false, { description: "Keep the tagged revision's files and add the artefacts" });
  tag = Option.String("--tag", "latest", { description: "Tag to build on and move (default latest)" });

  async run(): Promise<void> {
    const { revision } = await (
      await this.client(NamespaceService)
    ).publishTaskArtefacts({
      name: this.name,
      taskId: this.task,
      append: this.append,
      tag: this.tag,
    });
    this.output.line(revisionLine(revision));
  }
}

/** Every `namespace` command, for registration with the Cli. */
/** The `namespace` commands that fill a namespace from a task or another namespace, for registration with the Cli. */
export const namespacePublishCommands = [NamespaceCloneCommand, NamespacePublishCommand];
