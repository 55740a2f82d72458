import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ArtefactSchema,
  StorageFileSchema,
  StorageSchema,
  type Artefact,
  type Storage,
  type StorageFile,
} from "@mottainai/proto";
import type { ArtefactRecord } from "../store/artefact-store.js";
import type { StorageFileRecord, StorageRecord } from "../store/storage-store.js";

/** Wire form of a stored artefact. */
export function artefactToProto(a: ArtefactRecord): Artefact {
  return create(ArtefactSchema, {
    taskId: a.taskId,
    path: a.path,
    size: BigInt(a.size),
    sha256: a.sha256,
    createTime: timestampFromMs(a.createTime),
  });
}

/** Wire form of a stored storage. */
export function storageToProto(s: StorageRecord): Storage {
  return create(StorageSchema, {
    id: s.id,
    name: s.name,
    ownerId: s.ownerId,
    fileCount: BigInt(s.fileCount),
    totalSize: BigInt(s.totalSize),
    createTime: timestampFromMs(s.createTime),
  });
}

/** Wire form of a stored storage file. */
export function storageFileToProto(f: StorageFileRecord): StorageFile {
  return create(StorageFileSchema, { path: f.path, size: BigInt(f.size), sha256: f.sha256 });
}
