import { toJson } from "@bufbuild/protobuf";
import { NamespaceFileSchema, type NamespaceRevision, NamespaceService } from "@mottainai/proto";
import type { Client } from "@connectrpc/connect";
import { Command, Option } from "clipanion";
import { downloadFiles, hashedLocalFiles, uploadFiles, uploadMessages, type HashedFile } from "../file-transfer.js";
import type { TransferProgress } from "../output.js";
import { parsePathFilters } from "../path-filters.js";
import {
  directoryArgument,
  downloadDirectory,
  downloadFilterDetails,
  filterOption,
  toOption,
  uploadOriginalDetails,
  uploadTargets,
} from "./transfer-options.js";
import { MottainaiCommand, jsonOption, requiredArgument } from "./mottainai-command.js";
import { namespaceCategory as category, revisionLine } from "./namespace.js";
import { filesTable } from "./storage.js";

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
/** `mottainai namespace upload NAME PATH... [--to PREFIX] [--tag TAG]`. */
export class NamespaceUploadCommand extends MottainaiCommand {
  static override paths = [["namespace", "upload"]];
  static override usage = Command.Usage({
    category,
    description: "Upload files or directory trees into a namespace as a new revision",
    details: `A file is stored under its own name, a directory's files under their paths inside it, both below \`--to\`. ${uploadOriginalDetails} Other files of the tagged revision are kept. Every file makes a revision (the contract uploads one file per call); with several files they are staged on a temporary tag and \`--tag\` (latest) moves once, at the end, to the revision holding them all, so readers never see half an upload. Each file's sha256 is verified by the server. A progress bar is drawn on a terminal.`,
    examples: [["Publish a repository tree", "$0 namespace upload repo ./packages --to amd64"]],
  });

  name = requiredArgument("NAME");
  sources = Option.Rest({ required: 1, name: "PATH" });
  to = Option.String("--to", "", { description: "Remote directory to upload into (default the top)" });
  tag = Option.String("--tag", "latest", { description: "Tag the upload builds on and moves (default latest)" });

  async run(): Promise<void> {
    const client = await this.transferClient(NamespaceService);
    const { sources, to } = uploadTargets(this.sources, this.to);
    const hashed = await hashedLocalFiles(sources, to);
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

/** `mottainai namespace download NAME [DIR] [-f REGEX]... [--ref REF] [--path P] [--to DIR]`. */
export class NamespaceDownloadCommand extends MottainaiCommand {
  static override paths = [["namespace", "download"]];
  static override usage = Command.Usage({
    category,
    description: "Download a namespace revision's files (or one path) into a directory",
    details: `Files keep their paths below the directory (default the current one). ${downloadFilterDetails} A partial file left by an interrupted download is resumed; every file is verified against its sha256.`,
  });

  name = requiredArgument("NAME");
  dir = directoryArgument();
  ref = Option.String("--ref", "", { description: "Tag or revision number (default latest)" });
  onlyPath = Option.String("--path", { description: "Only this file (default every file)" });
  to = toOption();
  filters = filterOption();

  async run(): Promise<void> {
    const to = downloadDirectory(this.dir, this.to);
    const filters = parsePathFilters(this.filters);
    const client = await this.transferClient(NamespaceService);
    // Pin the revision once, so that a publish during the download cannot mix two revisions.
    const { revision } = await client.getRevision({ name: this.name, ref: this.ref });
    const ref = String(revision?.number ?? this.ref);
    const { files } = await client.listFiles({ name: this.name, ref, prefix: this.onlyPath ?? "" });
    await downloadFiles(this.output, {
      listed: files,
      onlyPath: this.onlyPath,
      missing: `namespace ${this.name} has no file ${this.onlyPath}`,
      filters,
      to,
      open: (f, offset) => client.downloadFile({ name: this.name, ref, path: f.path, offset: BigInt(offset) }),
    });
  }
}

/** The `namespace` commands that list, upload and download files, for registration with the Cli. */
export const namespaceFileCommands = [NamespaceFilesCommand, NamespaceUploadCommand, NamespaceDownloadCommand];
