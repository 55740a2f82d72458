import { toJson } from "@bufbuild/protobuf";
import { StorageFileSchema, StorageSchema, StorageService } from "@mottainai/proto";
import { Command, Option } from "clipanion";
import { downloadFiles, hashedLocalFiles, uploadFiles, uploadMessages, type RemoteFile } from "../file-transfer.js";
import { formatBytes, formatTimestamp, orNone } from "../format.js";
import { requireField } from "../require-field.js";
import {
  directoryArgument,
  downloadDirectory,
  relativeRemotePath,
  toOption,
  uploadOriginalDetails,
  uploadTargets,
} from "./transfer-options.js";
import { MottainaiCommand, jsonOption, requiredArgument } from "./mottainai-command.js";

const category = "Storages";

/** `mottainai storage create NAME [--json]`: a new, empty storage; prints its id. */
export class StorageCreateCommand extends MottainaiCommand {
  static override paths = [["storage", "create"]];
  static override usage = Command.Usage({
    category,
    description: "Create a storage (a read-only input bucket for tasks); prints its id",
    details: "Names are 1 to 128 letters, digits, `.`, `_` or `-`, not starting with `.` or `-`, and unique.",
  });

  name = requiredArgument("NAME");
  json = jsonOption();

  async run(): Promise<void> {
    const { storage } = await (await this.client(StorageService)).createStorage({ name: this.name });
    const created = requireField(storage, "storage");
    if (this.json) this.output.json(toJson(StorageSchema, created));
    else this.output.line(created.id);
  }
}

/** `mottainai storage list [--json]`: the storages the caller may read. */
export class StorageListCommand extends MottainaiCommand {
  static override paths = [["storage", "list"]];
  static override usage = Command.Usage({ category, description: "List the storages you may read" });

  json = jsonOption();

  async run(): Promise<void> {
    const { storages } = await (await this.client(StorageService)).listStorages({});
    this.output.list(this.json, StorageSchema, storages, ["NAME", "ID", "OWNER", "FILES", "SIZE", "CREATED"], (s) => [
      s.name,
      s.id,
      orNone(s.ownerId),
      String(s.fileCount),
      formatBytes(Number(s.totalSize)),
      formatTimestamp(s.createTime),
    ]);
  }
}

/** `mottainai storage show ID|NAME [--json]`: the storage and its files. */
export class StorageShowCommand extends MottainaiCommand {
  static override paths = [["storage", "show"]];
  static override usage = Command.Usage({
    category,
    description: "Show a storage (by id or name) and its files",
    details: "`--json` prints `{ storage, files }`; sizes are bytes.",
  });

  id = requiredArgument("ID|NAME");
  json = jsonOption();

  async run(): Promise<void> {
    const client = await this.client(StorageService);
    const storage = requireField((await client.getStorage({ id: this.id })).storage, "storage");
    const { files } = await client.listStorageFiles({ id: storage.id });
    if (this.json) {
      this.output.json({ storage: toJson(StorageSchema, storage), files: files.map((f) => toJson(StorageFileSchema, f)) });
      return;
    }
    this.output.fields([
      ["id", storage.id],
      ["name", storage.name],
      ["owner", orNone(storage.ownerId)],
      ["files", String(storage.fileCount)],
      ["size", `${storage.totalSize} bytes (${formatBytes(Number(storage.totalSize))})`],
      ["created", formatTimestamp(storage.createTime)],
    ]);
    if (files.length > 0) {
      this.output.line("");
      filesTable(this.output, files);
    }
  }
}

/** `mottainai storage upload ID|NAME PATH... [--to PREFIX]`: files or directory trees. */
export class StorageUploadCommand extends MottainaiCommand {
  static override paths = [["storage", "upload"]];
  static override usage = Command.Usage({
    category,
    description: "Upload files or directory trees into a storage",
    details: `A file is stored under its own name, a directory's files under their paths inside it, both below \`--to\` when given. ${uploadOriginalDetails} An existing path is replaced. Each file's sha256 is computed first and the server commits it only if the bytes match. A progress bar is drawn on a terminal.`,
    examples: [
      ["Upload a tree", "$0 storage upload distfiles ./distfiles"],
      ["Upload one file below a prefix", "$0 storage upload distfiles ./a.tar.gz --to src"],
    ],
  });

  id = requiredArgument("ID|NAME");
  sources = Option.Rest({ required: 1, name: "PATH" });
  to = Option.String("--to", "", { description: "Remote directory to upload into (default the top)" });

  async run(): Promise<void> {
    const client = await this.transferClient(StorageService);
    const storage = requireField((await client.getStorage({ id: this.id })).storage, "storage");
    const { sources, to } = uploadTargets(this.sources, this.to);
    const hashed = await hashedLocalFiles(sources, to);
    await uploadFiles(this.output, hashed, async (f, progress) => {
      const header = { id: storage.id, path: f.path, size: BigInt(f.size), sha256: f.sha256 };
      await client.uploadStorageFile(uploadMessages(header, f, progress));
    });
  }
}

/** `mottainai storage download ID|NAME [DIR] [--path P] [--to DIR]`: one file or all, resuming partial files. */
export class StorageDownloadCommand extends MottainaiCommand {
  static override paths = [["storage", "download"]];
  static override usage = Command.Usage({
    category,
    description: "Download a storage's files (or one path) into a directory",
    details:
      "Files keep their paths below the directory: DIR (the original's `<target>`) or `--to` (default the current one). A partial file left by an interrupted download is resumed from its size; every file is verified against its sha256.",
  });

  id = requiredArgument("ID|NAME");
  dir = directoryArgument();
  onlyPath = Option.String("--path", { description: "Only this file (default every file)" });
  to = toOption();

  async run(): Promise<void> {
    const to = downloadDirectory(this.dir, this.to);
    const client = await this.transferClient(StorageService);
    const storage = requireField((await client.getStorage({ id: this.id })).storage, "storage");
    const { files } = await client.listStorageFiles({ id: storage.id, prefix: this.onlyPath ?? "" });
    await downloadFiles(this.output, {
      listed: files,
      onlyPath: this.onlyPath,
      missing: `storage ${storage.name} has no file ${this.onlyPath}`,
      to,
      open: (f, offset) => client.downloadStorageFile({ id: storage.id, path: f.path, offset: BigInt(offset) }),
    });
  }
}

/** `mottainai storage remove ID|NAME [PATH...]`: removes files, or the whole storage when no path is given. */
export class StorageRemoveCommand extends MottainaiCommand {
  static override paths = [["storage", "remove"]];
  static override usage = Command.Usage({
    category,
    description: "Remove files from a storage, or the storage itself when no path is given",
  });

  id = requiredArgument("ID|NAME");
  files = Option.Rest({ name: "PATH" });

  async run(): Promise<void> {
    const client = await this.client(StorageService);
    const storage = requireField((await client.getStorage({ id: this.id })).storage, "storage");
    if (this.files.length > 0) await client.removeStorageFile({ id: storage.id, paths: this.files.map(relativeRemotePath) });
    else await client.deleteStorage({ id: storage.id });
  }
}

/** `mottainai storage delete ID|NAME [PATH...]`: the original's name for `storage remove`. */
export class StorageDeleteCommand extends StorageRemoveCommand {
  static override paths = [["storage", "delete"]];
  static override usage = Command.Usage({
    category,
    description: "Delete a storage, or remove files from it (the original's name for `storage remove`)",
  });
}

/** Every `storage` command, for registration with the Cli. */
export const storageCommands = [
  StorageCreateCommand,
  StorageListCommand,
  StorageShowCommand,
  StorageUploadCommand,
  StorageDownloadCommand,
  StorageRemoveCommand,
  StorageDeleteCommand,
];

/** PATH, SIZE (bytes) and SHA256 of files (storage or artefact listings). */
export function filesTable(
  output: { table(head: readonly string[], rows: readonly (readonly string[])[]): void },
  files: readonly RemoteFile[],
): void {
  output.table(
    ["PATH", "SIZE", "SHA256"],
    files.map((f) => [f.path, String(f.size), f.sha256]),
  );
}
