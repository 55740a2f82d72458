import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { ArtefactService } from "@mottainai/proto";
import { checkedPath, checkedPrefix, readableTask } from "../auth/file-access.js";
import { principalKey } from "../auth/principal.js";
import type { BlobStore } from "../blob/blob-store.js";
import { receiveUpload } from "../blob/receive-upload.js";
import { readBlobChunks } from "../blob/send-blob.js";
import { artefactToProto } from "../convert/file-convert.js";
import type { EventBus } from "../events/event-bus.js";
import type { Store } from "../store/store.js";

/** Dependencies of the artefact service. */
export interface ArtefactServiceOptions {
  store: Store;
  blobs: BlobStore;
  /** Largest accepted artefact (ServerConfig.maxUploadBytes). */
  maxUploadBytes: number;
  /** Where artefact.uploaded events go; none when unset. */
  events?: Pick<EventBus, "publish">;
  now?: () => number;
}

/**
 * ArtefactService: uploads only from the running task itself (its current attempt's task token),
 * reads for whoever may read the task (auth/file-access.ts readableTask).
 */
export function createArtefactService(o: ArtefactServiceOptions): ServiceImpl<typeof ArtefactService> {
  const now = o.now ?? Date.now;

  return {
    async listArtefacts(req, ctx) {
      const task = await readableTask(o.store, ctx.values.get(principalKey), req.taskId);
      const artefacts = await o.store.artefacts.list(task.id, checkedPrefix(req.prefix));
      return { artefacts: artefacts.map(artefactToProto) };
    },

    async uploadArtefact(requests, ctx: HandlerContext) {
      const principal = ctx.values.get(principalKey);
      if (principal.kind !== "task") {
        throw new ConnectError("artefacts are uploaded only by their running task, with its task token", Code.PermissionDenied);
      }
      let path = "";
      const { header, blob } = await receiveUpload(requests, {
        blobs: o.blobs,
        maxBytes: o.maxUploadBytes,
        accept: (h) => {
          if (h.taskId !== principal.task.id) {
            throw new ConnectError(
              `header.task_id: this task token belongs to task ${principal.task.id}, not ${JSON.stringify(h.taskId)}`,
              Code.PermissionDenied,
            );
          }
          path = checkedPath(h.path, "header.path");
        },
      });
      // The attempt may have ended (lease lost, stopped) while the bytes were on their way.
      const current = await o.store.tasks.get(header.taskId);
      if (!current || current.attempt !== principal.attempt || current.leaseId === "") {
        throw new ConnectError(
          `attempt ${principal.attempt} of task ${header.taskId} is no longer running`,
          Code.FailedPrecondition,
        );
      }
      const artefact = await o.store.artefacts.put({
        taskId: header.taskId,
        path,
        size: blob.size,
        sha256: blob.sha256,
        createTime: now(),
      });
      await o.events?.publish("artefact.uploaded", current.id, undefined, {
        task_id: current.id,
        owner_id: current.ownerId,
        pipeline_id: current.pipelineId,
        path,
        size: String(blob.size),
        sha256: blob.sha256,
      });
      return { artefact: artefactToProto(artefact) };
    },

    async *downloadArtefact(req, ctx) {
      const task = await readableTask(o.store, ctx.values.get(principalKey), req.taskId);
      const path = checkedPath(req.path, "path");
      const record = await o.store.artefacts.get(task.id, path);
      if (!record) throw new ConnectError(`task ${task.id} has no artefact ${JSON.stringify(path)}`, Code.NotFound);
      if (req.offset > BigInt(record.size)) {
        throw new ConnectError(`offset: ${req.offset} is past the end of ${path} (${record.size} bytes)`, Code.OutOfRange);
      }
      const artefact = artefactToProto(record);
      let first = true;
      for await (const { offset, chunk } of readBlobChunks(o.blobs, record.sha256, Number(req.offset))) {
        yield { artefact: first ? artefact : undefined, offset: BigInt(offset), chunk };
        first = false;
      }
      if (first) yield { artefact, offset: req.offset, chunk: new Uint8Array() };
    },
  };
}
