import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { StorageService } from "@mottainai/proto";
import { checkedName, checkedPath, checkedPrefix, readableStorage, writableStorage } from "../auth/file-access.js";
import { isPrivileged, principalKey, requireUser } from "../auth/principal.js";
import { newId } from "../auth/secrets.js";
import type { BlobStore } from "../blob/blob-store.js";
import { receiveUpload } from "../blob/receive-upload.js";
import { readBlobChunks } from "../blob/send-blob.js";
import { storageFileToProto, storageToProto } from "../convert/file-convert.js";
import type { EventBus } from "../events/event-bus.js";
import type { Store } from "../store/store.js";
import { StorageExistsError, type StorageRecord } from "../store/storage-store.js";

/** Dependencies of the storage service. */
export interface StorageServiceOptions {
  store: Store;
  blobs: BlobStore;
  /** Largest accepted file (ServerConfig.maxUploadBytes). */
  maxUploadBytes: number;
  /** Where storage.* events go (EVENT_TYPES); none when unset. */
  events?: Pick<EventBus, "publish">;
  now?: () => number;
}

/**
 * StorageService: users create storages and are their owners; the owner, managers and admins
 * read and write them; a running task reads the storages its `storage` field declares and never
 * writes. Everyone else gets NotFound (auth/file-access.ts explains why).
 */
export function createStorageService(o: StorageServiceOptions): ServiceImpl<typeof StorageService> {
  const now = o.now ?? Date.now;
  const publish = async (type: string, s: StorageRecord, extra: Record<string, string> = {}) => {
    await o.events?.publish(type, s.id, undefined, { storage: s.name, owner_id: s.ownerId, ...extra });
  };

  return {
    async createStorage(req, ctx) {
      const user = requireUser(ctx);
      const name = checkedName(req.name, "name");
      try {
        const storage = await o.store.storages.create({ id: newId(), name, ownerId: user.id, createTime: now() });
        await publish("storage.created", storage);
        return { storage: storageToProto(storage) };
      } catch (err) {
        if (err instanceof StorageExistsError) throw new ConnectError(err.message, Code.AlreadyExists);
        throw err;
      }
    },

    async getStorage(req, ctx) {
      return { storage: storageToProto(await readableStorage(o.store, ctx.values.get(principalKey), req.id)) };
    },

    async listStorages(_req, ctx) {
      const principal = ctx.values.get(principalKey);
      let storages: StorageRecord[];
      if (principal.kind === "task") {
        const declared = await Promise.all(
          principal.task.definition.storage.map((s) => readableStorage(o.store, principal, s).catch(() => undefined)),
        );
        storages = [...new Map(declared.filter((s) => s !== undefined).map((s) => [s.id, s])).values()];
      } else {
        const user = requireUser(ctx);
        storages = await o.store.storages.list(isPrivileged(user) ? undefined : user.id);
      }
      return { storages: storages.map(storageToProto) };
    },

    async deleteStorage(req, ctx) {
      const storage = await writableStorage(o.store, ctx.values.get(principalKey), req.id);
      await o.store.storages.delete(storage.id);
      await publish("storage.deleted", storage);
      return {};
    },

    async listStorageFiles(req, ctx) {
      const storage = await readableStorage(o.store, ctx.values.get(principalKey), req.id);
      const files = await o.store.storages.listFiles(storage.id, checkedPrefix(req.prefix));
      return { files: files.map(storageFileToProto) };
    },

    async uploadStorageFile(requests, ctx) {
      const principal = ctx.values.get(principalKey);
      let storage: StorageRecord | undefined;
      let path = "";
      const { blob } = await receiveUpload(requests, {
        blobs: o.blobs,
        maxBytes: o.maxUploadBytes,
        accept: async (h) => {
          storage = await writableStorage(o.store, principal, h.id);
          path = checkedPath(h.path, "header.path");
        },
      });
      const target = storage!;
      const file = { storageId: target.id, path, size: blob.size, sha256: blob.sha256, createTime: now() };
      if (!(await o.store.storages.putFile(file))) {
        throw new ConnectError(`storage ${target.name} was deleted during the upload`, Code.NotFound);
      }
      await publish("storage.file_uploaded", target, { path, size: String(blob.size), sha256: blob.sha256 });
      return { file: storageFileToProto(file) };
    },

    async *downloadStorageFile(req, ctx) {
      const storage = await readableStorage(o.store, ctx.values.get(principalKey), req.id);
      const path = checkedPath(req.path, "path");
      const record = await o.store.storages.getFile(storage.id, path);
      if (!record) throw new ConnectError(`storage ${storage.name} has no file ${JSON.stringify(path)}`, Code.NotFound);
      if (req.offset > BigInt(record.size)) {
        throw new ConnectError(`offset: ${req.offset} is past the end of ${path} (${record.size} bytes)`, Code.OutOfRange);
      }
      const file = storageFileToProto(record);
      let first = true;
      for await (const { offset, chunk } of readBlobChunks(o.blobs, record.sha256, Number(req.offset))) {
        yield { file: first ? file : undefined, offset: BigInt(offset), chunk };
        first = false;
      }
      if (first) yield { file, offset: req.offset, chunk: new Uint8Array() };
    },

    async removeStorageFile(req, ctx) {
      const storage = await writableStorage(o.store, ctx.values.get(principalKey), req.id);
      if (req.paths.length === 0) throw new ConnectError("paths: at least one path is required", Code.InvalidArgument);
      const paths = req.paths.map((p, i) => checkedPath(p, `paths[${i}]`));
      await o.store.storages.removeFiles(storage.id, paths);
      await publish("storage.files_removed", storage, { paths: paths.join(",") });
      return {};
    },
  };
}
