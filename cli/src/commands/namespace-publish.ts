import { NamespaceService } from "@mottainai/proto";
import { Command, Option, UsageError } from "clipanion";
import { requireField } from "../require-field.js";
import { MottainaiCommand, requiredArgument } from "./mottainai-command.js";
import { namespaceCategory as category, revisionLine } from "./namespace.js";

/**
 * `mottainai namespace clone FROM TO [--ref REF]` (a new namespace), and the original's
 * `namespace clone NS --from ORIG` (ORIG's content into NS, created or overwritten).
 */
export class NamespaceCloneCommand extends MottainaiCommand {
  static override paths = [["namespace", "clone"]];
  static override usage = Command.Usage({
    category,
    description:
      "Create a namespace whose first revision is a revision of another (latest by default); with --from, the original's overwrite",
    details:
      "`namespace clone FROM TO` creates TO and fails if it exists; it prints TO. `namespace clone NS --from ORIG` is the original's argument order and meaning: NS gets ORIG's files as they are in `--ref` (latest), replacing its own (a new revision, `latest` moved; NS is created when missing); it prints that revision. No bytes are copied either way.",
    examples: [
      ["A new namespace from the stable revision of another", "$0 namespace clone repo repo-test --ref stable"],
      ["Overwrite repo-test with repo (the original's form)", "$0 namespace clone repo-test --from repo"],
    ],
  });

  first = requiredArgument("FROM");
  to = Option.String({ name: "TO", required: false });
  from = Option.String("-f,--from", {
    description: "Namespace to copy into the single NAME given, replacing its content (the original's form)",
  });
  ref = Option.String("--ref", "", { description: "Tag or revision of the source (default latest)" });

  async run(): Promise<void> {
    const client = await this.client(NamespaceService);
    if (this.from === undefined) {
      if (this.to === undefined) throw new UsageError("TO: the new namespace's name is required (or NS --from ORIG)");
      const { namespace } = await client.cloneNamespace({ fromName: this.first, fromRef: this.ref, toName: this.to });
      this.output.line(requireField(namespace, "namespace").name);
      return;
    }
    if (this.to !== undefined) {
      throw new UsageError("--from names the source: give only the target (namespace clone NS --from ORIG)");
    }
    const { namespace, revision } = await client.cloneNamespace({
      fromName: this.from,
      fromRef: this.ref,
      toName: this.first,
      replace: true,
    });
    this.output.line(revision ? revisionLine(revision) : requireField(namespace, "namespace").name);
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
/** `mottainai namespace append NS --from TASK [--tag TAG]`: the original's publish_mode append. */
export class NamespaceAppendCommand extends MottainaiCommand {
  static override paths = [["namespace", "append"]];
  static override usage = Command.Usage({
    category,
    description:
      "Add a task's artefacts to a namespace's files as a new revision (the original's name for `namespace publish --append`)",
    details: "An artefact replaces a file at the same path; other files are kept. Prints the new revision.",
    examples: [["Add a task's packages to a repository", "$0 namespace append repo --from 0123456789abcdef"]],
  });

  name = requiredArgument("NS");
  from = Option.String("-f,--from", { description: "Task whose artefacts are added (required)" });
  tag = Option.String("--tag", "latest", { description: "Tag to build on and move (default latest)" });

  async run(): Promise<void> {
    if (this.from === undefined) throw new UsageError("--from TASK is required (namespace append NS --from TASK)");
    const { revision } = await (
      await this.client(NamespaceService)
    ).publishTaskArtefacts({ name: this.name, taskId: this.from, append: true, tag: this.tag });
    this.output.line(revisionLine(revision));
  }
}

/** The `namespace` commands that fill a namespace from a task or another namespace, for registration with the Cli. */
export const namespacePublishCommands = [NamespaceCloneCommand, NamespacePublishCommand, NamespaceAppendCommand];
