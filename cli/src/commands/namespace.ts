import { toJson } from "@bufbuild/protobuf";
import {
  type Namespace,
  NamespaceFileSchema,
  type NamespaceRevision,
  NamespaceRevisionSchema,
  NamespaceSchema,
  NamespaceService,
  type NamespaceTag,
  Visibility,
} from "@mottainai/proto";
import type { Client } from "@connectrpc/connect";
import { Command, Option } from "clipanion";
import { downloadFiles, hashedLocalFiles, uploadFiles, uploadMessages, type HashedFile } from "../file-transfer.js";
import { NONE, formatBytes, formatTimestamp, orNone } from "../format.js";
import type { TransferProgress } from "../output.js";
import { requireField } from "../require-field.js";
import { MottainaiCommand, jsonOption, requiredArgument } from "./mottainai-command.js";
import { filesTable } from "./storage.js";

const category = "Namespaces";

const visibilityWords: Record<Visibility, string> = {
  [Visibility.UNSPECIFIED]: "unknown",
  [Visibility.PUBLIC]: "public",
  [Visibility.INTERNAL]: "internal",
  [Visibility.ORGANIZATION]: "organization",
  [Visibility.PRIVATE]: "private",
};

/** A visibility as a word: public, internal, organization, private. */
export function visibilityWord(v: Visibility): string {
  return visibilityWords[v] ?? String(v);
}

/** The visibility a word names; throws a usage-style error for any other word. */
export function parseVisibility(word: string): Visibility {
  const entry = Object.entries(visibilityWords).find(([v, w]) => w === word && Number(v) !== Visibility.UNSPECIFIED);
  if (!entry) throw new Error(`--visibility: expected public, internal, organization or private, got ${JSON.stringify(word)}`);
  return Number(entry[0]) as Visibility;
}

/** The visibility `--visibility` names, UNSPECIFIED (the server's default) when it is not given. */
function optionalVisibility(word: string | undefined): Visibility {
  return word === undefined ? Visibility.UNSPECIFIED : parseVisibility(word);
}

const visibilityOption = (description: string) =>
  Option.String("--visibility", { description: `${description}: public, internal, organization or private` });

/** Tags as `name=revision`, comma-separated. */
function tagsText(ns: Namespace): string {
  return ns.tags.length === 0 ? NONE : ns.tags.map((t) => `${t.name}=${t.revision}`).join(",");
}

function revisionLine(revision: NamespaceRevision | undefined): string {
  const r = requireField(revision, "revision");
  return `revision ${r.number}: ${r.fileCount} files, ${formatBytes(Number(r.totalSize))}`;
}

/** `TAG -> revision N` for a tag a command moved (its requested name and "?" where the response lacks them). */
function tagLine(tag: NamespaceTag | undefined, requested: string): string {
  return `${tag?.name ?? requested} -> revision ${tag?.revision ?? "?"}`;
}

/** `mottainai namespace create NAME [--visibility V] [--org ORG] [--json]`. */
export class NamespaceCreateCommand extends MottainaiCommand {
  static override paths = [["namespace", "create"]];
  static override usage = Command.Usage({
    category,
    description: "Create a namespace (a versioned collection of published files)",
    details:
      "Visibility says who reads it: `public` (anyone, also without a token, e.g. apt over HTTP), `internal` (any signed-in user), `organization` (members of `--org`), `private` (the default: its owner, the organization's owners, managers and admins).",
    examples: [["A public package repository", "$0 namespace create sabayon-repo --visibility public"]],
  });

  name = requiredArgument("NAME");
  visibility = visibilityOption("Who may read it (default private)");
  org = Option.String("--org", { description: "Organization (id or name) it belongs to" });
  json = jsonOption();

  async run(): Promise<void> {
    const { namespace } = await (
      await this.client(NamespaceService)
    ).createNamespace({
      name: this.name,
      visibility: optionalVisibility(this.visibility),
      organizationId: this.org ?? "",
    });
    const ns = requireField(namespace, "namespace");
    if (this.json) this.output.json(toJson(NamespaceSchema, ns));
    else this.output.line(ns.name);
  }
}

/** `mottainai namespace list [--json]`: the namespaces the caller may read. */
export class NamespaceListCommand extends MottainaiCommand {
  static override paths = [["namespace", "list"]];
  static override usage = Command.Usage({ category, description: "List the namespaces you may read" });

  json = jsonOption();

  async run(): Promise<void> {
    const { namespaces } = await (await this.client(NamespaceService)).listNamespaces({});
    this.output.list(
      this.json,
      NamespaceSchema,
      namespaces,
      ["NAME", "VISIBILITY", "OWNER", "ORGANIZATION", "HEAD", "TAGS", "CREATED"],
      (n) => [
        n.name,
        visibilityWord(n.visibility),
        orNone(n.ownerId),
        orNone(n.organizationId),
        String(n.headRevision),
        tagsText(n),
        formatTimestamp(n.createTime),
      ],
    );
  }
}

/** `mottainai namespace show NAME [--json]`: the namespace, its tags and the tagged revision. */
export class NamespaceShowCommand extends MottainaiCommand {
  static override paths = [["namespace", "show"]];
  static override usage = Command.Usage({ category, description: "Show a namespace and its tags" });

  name = requiredArgument("NAME");
  json = jsonOption();

  async run(): Promise<void> {
    const ns = requireField(
      (await (await this.client(NamespaceService)).getNamespace({ name: this.name })).namespace,
      "namespace",
    );
    if (this.json) {
      this.output.json(toJson(NamespaceSchema, ns));
      return;
    }
    this.output.fields([
      ["name", ns.name],
      ["visibility", visibilityWord(ns.visibility)],
      ["owner", orNone(ns.ownerId)],
      ["organization", orNone(ns.organizationId)],
      ["head revision", String(ns.headRevision)],
      ["tags", tagsText(ns)],
      ["created", formatTimestamp(ns.createTime)],
    ]);
  }
}

/** `mottainai namespace update NAME [--visibility V] [--org ORG|-]`. */
export class NamespaceUpdateCommand extends MottainaiCommand {
  static override paths = [["namespace", "update"]];
  static override usage = Command.Usage({
    category,
    description: "Change a namespace's visibility or organization",
    details: "`--org -` removes it from its organization.",
  });

  name = requiredArgument("NAME");
  visibility = visibilityOption("New visibility");
  org = Option.String("--org", { description: "New organization (id or name), `-` for none" });

  async run(): Promise<void> {
    await (
      await this.client(NamespaceService)
    ).updateNamespace({
      name: this.name,
      visibility: optionalVisibility(this.visibility),
      organizationId: this.org ?? "",
    });
  }
}

/** `mottainai namespace files NAME [--ref REF] [--prefix P] [--json]`. */
export class NamespaceFilesCommand extends MottainaiCommand {
  static override paths = [["namespace", "files"]];
  static override usage = Command.Usage({
    category,
    description: "List the files of a namespace revision (the `latest` tag by default)",
  });

  name = requiredArgument("NAME");
  ref = Option.String("--ref", "", { description: "Tag or revision number (default latest)" });
  prefix = Option.String("--prefix", "", { description: "Only paths starting with this" });
  json = jsonOption();

  async run(): Promise<void> {
    const { files } = await (
      await this.client(NamespaceService)
    ).listFiles({ name: this.name, ref: this.ref, prefix: this.prefix });
    if (this.json) this.output.json(files.map((f) => toJson(NamespaceFileSchema, f)));
    else filesTable(this.output, files);
  }
}

/** `mottainai namespace tag NAME TAG REF` / `namespace tag NAME TAG --delete`. */
export class NamespaceTagCommand extends MottainaiCommand {
  static override paths = [["namespace", "tag"]];
  static override usage = Command.Usage({
    category,
    description: "Point a tag at a revision (or another tag's revision), or delete it",
    examples: [
      ["Mark the latest revision stable", "$0 namespace tag repo stable latest"],
      ["Delete a tag", "$0 namespace tag repo stable --delete"],
    ],
  });

  name = requiredArgument("NAME");
  tag = requiredArgument("TAG");
  ref = Option.String({ name: "REF", required: false });
  delete = Option.Boolean("--delete", false, { description: "Delete the tag" });

  async run(): Promise<void> {
    const client = await this.client(NamespaceService);
    if (this.delete) {
      await client.deleteTag({ name: this.name, tag: this.tag });
      return;
    }
    if (!this.ref) throw new Error("REF: a tag name or revision number is required (or --delete)");
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

/** `mottainai namespace upload NAME PATH... [--to PREFIX] [--tag TAG]`. */
export class NamespaceUploadCommand extends MottainaiCommand {
  static override paths = [["namespace", "upload"]];
  static override usage = Command.Usage({
    category,
    description: "Upload files or directory trees into a namespace as a new revision",
    details:
      "A file is stored under its own name, a directory's files under their paths inside it, both below `--to`. Other files of the tagged revision are kept. Every file makes a revision (the contract uploads one file per call); with several files they are staged on a temporary tag and `--tag` (latest) moves once, at the end, to the revision holding them all, so readers never see half an upload. Each file's sha256 is verified by the server. A progress bar is drawn on a terminal.",
    examples: [["Publish a repository tree", "$0 namespace upload repo ./packages --to amd64"]],
  });

  name = requiredArgument("NAME");
  sources = Option.Rest({ required: 1, name: "PATH" });
  to = Option.String("--to", "", { description: "Remote directory to upload into (default the top)" });
  tag = Option.String("--tag", "latest", { description: "Tag the upload builds on and moves (default latest)" });

  async run(): Promise<void> {
    const client = await this.transferClient(NamespaceService);
    const hashed = await hashedLocalFiles(this.sources, this.to);
    if (hashed.length === 0) throw new Error("nothing to upload: the directories hold no files");
    const single = hashed.length === 1;
    const staging = single ? this.tag : `upload-${process.pid}-${Date.now().toString(36)}`;
    let last: NamespaceRevision | undefined;
    try {
      if (!single) {
        const base = await client.getNamespace({ name: this.name });
        const tagged = base.namespace?.tags.find((t) => t.name === this.tag);
        if (tagged) await client.setTag({ name: this.name, tag: staging, ref: String(tagged.revision) });
      }
      await uploadFiles(this.output, hashed, async (f, progress) => {
        last = await uploadOne(client, this.name, staging, f, progress);
      });
      if (!single && last) await client.setTag({ name: this.name, tag: this.tag, ref: String(last.number) });
    } finally {
      if (!single) await client.deleteTag({ name: this.name, tag: staging }).catch(() => undefined);
    }
    this.output.line(revisionLine(last));
  }
}

/** Uploads f into namespace name on tag; resolves with the revision that holds it. */
async function uploadOne(
  client: Client<typeof NamespaceService>,
  name: string,
  tag: string,
  f: HashedFile,
  progress: TransferProgress,
): Promise<NamespaceRevision | undefined> {
  const header = { name, path: f.path, size: BigInt(f.size), sha256: f.sha256, tag };
  return (await client.uploadFile(uploadMessages(header, f, progress))).revision;
}

/** `mottainai namespace download NAME [--ref REF] [--path P] [--to DIR]`. */
export class NamespaceDownloadCommand extends MottainaiCommand {
  static override paths = [["namespace", "download"]];
  static override usage = Command.Usage({
    category,
    description: "Download a namespace revision's files (or one path) into a directory",
    details:
      "Files keep their paths below `--to` (default the current directory). A partial file left by an interrupted download is resumed; every file is verified against its sha256.",
  });

  name = requiredArgument("NAME");
  ref = Option.String("--ref", "", { description: "Tag or revision number (default latest)" });
  onlyPath = Option.String("--path", { description: "Only this file (default every file)" });
  to = Option.String("--to", ".", { description: "Local directory (default the current one)" });

  async run(): Promise<void> {
    const client = await this.transferClient(NamespaceService);
    // Pin the revision once, so that a publish during the download cannot mix two revisions.
    const { revision } = await client.getRevision({ name: this.name, ref: this.ref });
    const ref = String(revision?.number ?? this.ref);
    const { files } = await client.listFiles({ name: this.name, ref, prefix: this.onlyPath ?? "" });
    await downloadFiles(this.output, {
      listed: files,
      onlyPath: this.onlyPath,
      missing: `namespace ${this.name} has no file ${this.onlyPath}`,
      to: this.to,
      open: (f, offset) => client.downloadFile({ name: this.name, ref, path: f.path, offset: BigInt(offset) }),
    });
  }
}

/** `mottainai namespace remove NAME [PATH...] [--tag TAG]`: paths (a new revision) or the namespace. */
export class NamespaceRemoveCommand extends MottainaiCommand {
  static override paths = [["namespace", "remove"]];
  static override usage = Command.Usage({
    category,
    description: "Remove paths from a namespace (a new revision), or the namespace itself when no path is given",
  });

  name = requiredArgument("NAME");
  files = Option.Rest({ name: "PATH" });
  tag = Option.String("--tag", "latest", { description: "Tag the removal builds on and moves (default latest)" });

  async run(): Promise<void> {
    const client = await this.client(NamespaceService);
    if (this.files.length === 0) {
      await client.deleteNamespace({ name: this.name });
      return;
    }
    const { revision } = await client.removeFile({ name: this.name, paths: this.files, tag: this.tag });
    this.output.line(revisionLine(revision));
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
export const namespaceCommands = [
  NamespaceCreateCommand,
  NamespaceListCommand,
  NamespaceShowCommand,
  NamespaceUpdateCommand,
  NamespaceFilesCommand,
  NamespaceTagCommand,
  NamespaceRollbackCommand,
  NamespaceRevisionsCommand,
  NamespaceDiffCommand,
  NamespaceCloneCommand,
  NamespaceUploadCommand,
  NamespaceDownloadCommand,
  NamespaceRemoveCommand,
  NamespacePublishCommand,
];
