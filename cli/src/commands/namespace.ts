import { toJson } from "@bufbuild/protobuf";
import {
  type Namespace,
  type NamespaceRevision,
  NamespaceSchema,
  NamespaceService,
  type NamespaceTag,
  Visibility,
} from "@mottainai/proto";
import { Command, Option } from "clipanion";
import { NONE, formatBytes, formatTimestamp, orNone } from "../format.js";
import { requireField } from "../require-field.js";
import { MottainaiCommand, jsonOption, requiredArgument } from "./mottainai-command.js";
import { relativeRemotePath } from "./transfer-options.js";

/** The help category of every `namespace` command. */
export const namespaceCategory = "Namespaces";
const category = namespaceCategory;

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

/** `revision N: F files, SIZE` for a revision a command made. */
export function revisionLine(revision: NamespaceRevision | undefined): string {
  const r = requireField(revision, "revision");
  return `revision ${r.number}: ${r.fileCount} files, ${formatBytes(Number(r.totalSize))}`;
}

/** `TAG -> revision N` for a tag a command moved (its requested name and "?" where the response lacks them). */
export function tagLine(tag: NamespaceTag | undefined, requested: string): string {
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
    const paths = this.files.map(relativeRemotePath);
    const { revision } = await client.removeFile({ name: this.name, paths, tag: this.tag });
    this.output.line(revisionLine(revision));
  }
}

/** `mottainai namespace delete NAME [PATH...]`: the original's name for `namespace remove`. */
export class NamespaceDeleteCommand extends NamespaceRemoveCommand {
  static override paths = [["namespace", "delete"]];
  static override usage = Command.Usage({
    category,
    description: "Delete a namespace, or remove paths from it (the original's name for `namespace remove`)",
  });
}

/** The `namespace` commands about namespaces themselves, for registration with the Cli. */
export const namespaceCommands = [
  NamespaceCreateCommand,
  NamespaceListCommand,
  NamespaceShowCommand,
  NamespaceUpdateCommand,
  NamespaceRemoveCommand,
  NamespaceDeleteCommand,
];
