import { toJson } from "@bufbuild/protobuf";
import { NamespaceFileSchema, NamespaceRevisionSchema, NamespaceService } from "@mottainai/proto";
import { Command, Option, UsageError } from "clipanion";
import { formatBytes, formatTimestamp, orNone } from "../format.js";
import { MottainaiCommand, jsonOption, requiredArgument } from "./mottainai-command.js";
import { namespaceCategory as category, revisionLine, tagLine } from "./namespace.js";

/**
 * `mottainai namespace tag NAME TAG REF` / `namespace tag NAME TAG --delete`, and the original's
 * `namespace tag NS --from TASK` (publish the task's artefacts, replacing the files): the two are
 * told apart by `--from`.
 */
export class NamespaceTagCommand extends MottainaiCommand {
  static override paths = [["namespace", "tag"]];
  static override usage = Command.Usage({
    category,
    description: "Point a tag at a revision (or another tag's revision), or delete it; with --from, the original's publish",
    details:
      "`namespace tag NS --from TASK` is the original's form: it publishes TASK's artefacts as a new revision of NS holding exactly them and moves `latest` there (the same as `namespace publish NS TASK`), and prints that revision.",
    examples: [
      ["Mark the latest revision stable", "$0 namespace tag repo stable latest"],
      ["Delete a tag", "$0 namespace tag repo stable --delete"],
      ["Publish a task's artefacts (the original's form)", "$0 namespace tag repo --from 0123456789abcdef"],
    ],
  });

  name = requiredArgument("NAME");
  tag = Option.String({ name: "TAG", required: false });
  ref = Option.String({ name: "REF", required: false });
  delete = Option.Boolean("--delete", false, { description: "Delete the tag" });
  from = Option.String("-f,--from", {
    description: "Task whose artefacts replace the namespace's files (the original's form; no TAG or REF then)",
  });

  async run(): Promise<void> {
    const client = await this.client(NamespaceService);
    if (this.from !== undefined) {
      if (this.tag !== undefined || this.delete) {
        throw new UsageError("--from publishes a task's artefacts: give only the namespace (namespace tag NS --from TASK)");
      }
      const { revision } = await client.publishTaskArtefacts({ name: this.name, taskId: this.from, append: false });
      this.output.line(revisionLine(revision));
      return;
    }
    if (this.tag === undefined) throw new UsageError("TAG: a tag name is required (or --from TASK)");
    if (this.delete) {
      await client.deleteTag({ name: this.name, tag: this.tag });
      return;
    }
    if (!this.ref) throw new UsageError("REF: a tag name or revision number is required (or --delete)");
    const { tag } = await client.setTag({ name: this.name, tag: this.tag, ref: this.ref });
    this.output.line(tagLine(tag, this.tag));
  }
}

/** `mottainai namespace rollback NAME REF [--tag TAG]`: moves a tag back; copies nothing. */
export class NamespaceRollbackCommand extends MottainaiCommand {
  static override paths = [["namespace", "rollback"]];
  static override usage = Command.Usage({
    category,
    description: "Point a tag (latest by default) at an older revision; nothing is copied",
    details: "The next publish to the tag builds on that revision.",
    examples: [["Serve revision 3 again", "$0 namespace rollback repo 3"]],
  });

  name = requiredArgument("NAME");
  ref = requiredArgument("REF");
  tag = Option.String("--tag", "latest", { description: "Tag to move (default latest)" });

  async run(): Promise<void> {
    const { tag } = await (await this.client(NamespaceService)).setTag({ name: this.name, tag: this.tag, ref: this.ref });
    this.output.line(tagLine(tag, this.tag));
  }
}

/** `mottainai namespace revisions NAME [--json]`: newest first. */
export class NamespaceRevisionsCommand extends MottainaiCommand {
  static override paths = [["namespace", "revisions"]];
  static override usage = Command.Usage({ category, description: "List a namespace's revisions, newest first" });

  name = requiredArgument("NAME");
  json = jsonOption();

  async run(): Promise<void> {
    const { revisions } = await (await this.client(NamespaceService)).listRevisions({ name: this.name });
    this.output.list(
      this.json,
      NamespaceRevisionSchema,
      revisions,
      ["REVISION", "PARENT", "FILES", "SIZE", "TASK", "CREATOR", "CREATED", "MESSAGE"],
      (r) => [
        String(r.number),
        String(r.parent),
        String(r.fileCount),
        formatBytes(Number(r.totalSize)),
        orNone(r.taskId),
        orNone(r.creatorId),
        formatTimestamp(r.createTime),
        orNone(r.message),
      ],
    );
  }
}

/** `mottainai namespace diff NAME [--from REF] [--to REF] [--json]`. */
export class NamespaceDiffCommand extends MottainaiCommand {
  static override paths = [["namespace", "diff"]];
  static override usage = Command.Usage({
    category,
    description: "Show the paths added, removed and changed between two revisions",
    details:
      "`--to` defaults to latest and `--from` to the parent of `--to`. Each line is `A`, `D` or `M` and a path; `--json` prints `{ added, removed, changed }`.",
  });

  name = requiredArgument("NAME");
  from = Option.String("--from", "", { description: "Older tag or revision (default the parent of --to)" });
  to = Option.String("--to", "", { description: "Newer tag or revision (default latest)" });
  json = jsonOption();

  async run(): Promise<void> {
    const diff = await (
      await this.client(NamespaceService)
    ).diffRevisions({ name: this.name, fromRef: this.from, toRef: this.to });
    if (this.json) {
      const files = (list: typeof diff.added) => list.map((f) => toJson(NamespaceFileSchema, f));
      this.output.json({ added: files(diff.added), removed: files(diff.removed), changed: files(diff.changed) });
      return;
    }
    const rows = [
      ...diff.added.map((f) => ["A", f] as const),
      ...diff.removed.map((f) => ["D", f] as const),
      ...diff.changed.map((f) => ["M", f] as const),
    ].sort((a, b) => (a[1].path < b[1].path ? -1 : a[1].path > b[1].path ? 1 : 0));
    for (const [change, f] of rows) this.output.line(`${change} ${f.path}`);
  }
}

/** The `namespace` commands about tags and revisions, for registration with the Cli. */
export const namespaceTagCommands = [
  NamespaceTagCommand,
  NamespaceRollbackCommand,
  NamespaceRevisionsCommand,
  NamespaceDiffCommand,
];
