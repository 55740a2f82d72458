import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { PipelineService } from "@mottainai/proto";
import { isPrivileged, requireUser } from "../auth/principal.js";
import { pipelineStatesFromProto, pipelineToProto } from "../convert/pipeline-convert.js";
import { createPipeline, deletePipeline, retryPipeline, stopPipeline, type PipelineContext } from "../pipelines/index.js";
import type { PipelineRecord } from "../store/pipeline-store.js";
import type { TaskRecord } from "../store/task-store.js";
import { loadOwned } from "../auth/owned-resource.js";

/** PipelineService: converts between the wire and the store, checks ownership (TaskService's rule), delegates to the pipeline operations. */
export function createPipelineService(o: PipelineContext): ServiceImpl<typeof PipelineService> {
  const load = (ctx: HandlerContext, id: string): Promise<PipelineRecord> =>
    loadOwned(ctx, "pipeline", id, (id) => o.store.pipelines.get(id));

  const view = async (id: string) => {
    const p = await o.store.pipelines.get(id);
    if (!p) throw new ConnectError(`pipeline ${id} not found`, Code.NotFound);
    const members = await o.store.pipelines.members(id);
    const tasks = new Map<string, TaskRecord>();
    for (const m of members) {
      const task = m.taskId && m.result === "none" ? await o.store.tasks.get(m.taskId) : undefined;
      if (task) tasks.set(task.id, task);
    }
    return pipelineToProto(p, members, tasks);
  };

  return {
    async createPipeline(req, ctx) {
      const user = requireUser(ctx);
      if (!req.spec) throw new ConnectError("spec: a pipeline spec is required", Code.InvalidArgument);
      return { pipeline: await view(await createPipeline(o, user.id, req.spec)) };
    },

    async getPipeline(req, ctx) {
      return { pipeline: await view((await load(ctx, req.id)).id) };
    },

    async listPipelines(req, ctx) {
      const user = requireUser(ctx);
      const limit = Math.min(req.pageSize || 50, 1000);
      let beforeSeq: number | undefined;
      if (req.pageToken) {
        beforeSeq = Number(req.pageToken);
        if (!Number.isSafeInteger(beforeSeq))
          throw new ConnectError("page_token: not a token this server issued", Code.InvalidArgument);
      }
      if (!isPrivileged(user) && req.ownerId && req.ownerId !== user.id) {
        throw new ConnectError("owner_id: only managers and admins list other users' pipelines", Code.PermissionDenied);
      }
      const statuses = req.statuses.flatMap((s) => {
        const states = pipelineStatesFromProto(s);
        if (!states) throw new ConnectError(`statuses: ${s} is not a pipeline status`, Code.InvalidArgument);
        return states;
      });
      const pipelines = await o.store.pipelines.list({
        ownerId: isPrivileged(user) ? req.ownerId || undefined : user.id,
        statuses: [...new Set(statuses)],
        beforeSeq,
        limit: limit + 1,
      });
      const page = pipelines.slice(0, limit);
      const last = page[page.length - 1];
      return {
        pipelines: await Promise.all(page.map((p) => view(p.id))),
        nextPageToken: pipelines.length > limit && last ? String(last.seq) : "",
      };
    },

    async stopPipeline(req, ctx) {
      const p = await load(ctx, req.id);
      await stopPipeline(o, p);
      return { pipeline: await view(p.id) };
    },

    async retryPipeline(req, ctx) {
      const p = await load(ctx, req.id);
      await retryPipeline(o, p, req.failedOnly);
      return { pipeline: await view(p.id) };
    },

    async deletePipeline(req, ctx) {
      await deletePipeline(o, await load(ctx, req.id));
      return {};
    },
  };
}
