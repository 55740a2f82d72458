import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { PublisherService } from "@mottainai/proto";
import type { Logger } from "pino";
import { writableNamespace } from "../auth/namespace-access.js";
import { principalKey } from "../auth/principal.js";
import { newId as defaultNewId } from "../auth/secrets.js";
import { deliveryToProto, publisherKindFromProto, publisherToProto } from "../convert/delivery-convert.js";
import { checkGitBranch, checkPublisherTarget, DEFAULT_GIT_BRANCH, PublisherTargetError } from "../delivery/publisher-target.js";
import { publishQueued } from "../delivery/tag-move-feed.js";
import type { EventBus } from "../events/event-bus.js";
import type { PublisherRecord } from "../store/delivery-store.js";
import type { Store } from "../store/store.js";
import { checkedTag } from "./namespace-service.js";

/** Dependencies of the publisher service. */
export interface PublisherServiceOptions {
  store: Store;
  events: Pick<EventBus, "publish">;
  /** Told when a delivery was queued (DeliveryWorker.notify). */
  onQueued(): void;
  logger: Logger;
  now?: () => number;
  newId?: () => string;
}

/** Default and largest page of ListDeliveries. */
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

const invalid = (err: unknown): never => {
  if (err instanceof PublisherTargetError) throw new ConnectError(err.message, Code.InvalidArgument);
  throw err;
};

/**
 * PublisherService: a namespace's publishers and their deliveries. Every call needs a user who
 * may change the namespace (writableNamespace: its owner, its organization's owners, managers,
 * admins; NotFound for those who may not even read it). Targets on the server's file system
 * (paths, file:// URLs) are for admins only: the server writes there with its own rights.
 * A publisher added while its tag already exists queues a first delivery of that revision.
 */
export function createPublisherService(options: PublisherServiceOptions): ServiceImpl<typeof PublisherService> {
  const { store } = options;
  const now = options.now ?? Date.now;
  const newId = options.newId ?? defaultNewId;

  /** The publisher `id` if the caller may manage its namespace; NotFound otherwise. */
  const managedPublisher = async (id: string, ctx: HandlerContext): Promise<PublisherRecord> => {
    if (!id) throw new ConnectError("id: a publisher id is required", Code.InvalidArgument);
    const publisher = await store.deliveries.getPublisher(id);
    if (!publisher) throw new ConnectError(`publisher ${id} not found`, Code.NotFound);
    await writableNamespace(store, ctx.values.get(principalKey), publisher.namespace);
    return publisher;
  };

  return {
    async addPublisher(req, ctx) {
      const { ns, user } = await writableNamespace(store, ctx.values.get(principalKey), req.namespace);
      const kind = publisherKindFromProto(req.kind);
      if (!kind) throw new ConnectError("kind: expected PUBLISHER_KIND_RSYNC or PUBLISHER_KIND_GIT", Code.InvalidArgument);
      let checked;
      let branch = "";
      try {
        checked = checkPublisherTarget(kind, req.target);
        if (kind === "git") branch = checkGitBranch(req.branch || DEFAULT_GIT_BRANCH);
        else if (req.branch) throw new PublisherTargetError("branch: only git publishers have a branch");
      } catch (err) {
        return invalid(err);
      }
      if (checked.local && user.role !== "admin") {
        throw new ConnectError(
          "target: only admins may deliver to the server's own file system (a path or a file:// URL)",
          Code.PermissionDenied,
        );
      }
      const tag = checkedTag(req.tag, "tag");
      const publisher: PublisherRecord = {
        id: newId(),
        namespace: ns.name,
        kind,
        target: checked.target,
        branch,
        tag,
        creatorId: user.id,
        createTime: now(),
      };
      await store.deliveries.addPublisher(publisher);
      const current = await store.namespaces.getTag(ns.name, tag);
      if (current) {
        const { created, superseded } = await store.deliveries.enqueueTagMove(
          { namespace: ns.name, tag, revision: current.revision, publisherId: publisher.id },
          now(),
          newId,
        );
        await publishQueued(options.events, store.deliveries, created, superseded, options.logger, { reason: "publisher_added" });
        options.onQueued();
      }
      return { publisher: publisherToProto(publisher) };
    },

    async listPublishers(req, ctx) {
      const { ns } = await writableNamespace(store, ctx.values.get(principalKey), req.namespace);
      return { publishers: (await store.deliveries.listPublishers(ns.name)).map(publisherToProto) };
    },

    async removePublisher(req, ctx) {
      const publisher = await managedPublisher(req.id, ctx);
      await store.deliveries.removePublisher(publisher.id);
      return {};
    },

    async listDeliveries(req, ctx) {
      const { ns } = await writableNamespace(store, ctx.values.get(principalKey), req.namespace);
      if (req.limit > MAX_LIMIT) throw new ConnectError(`limit: at most ${MAX_LIMIT}`, Code.InvalidArgument);
      const deliveries = await store.deliveries.list({
        namespace: ns.name,
        publisherId: req.publisherId || undefined,
        limit: req.limit || DEFAULT_LIMIT,
      });
      return { deliveries: deliveries.map(deliveryToProto) };
    },

    async retryDelivery(req, ctx) {
      if (!req.id) throw new ConnectError("id: a delivery id is required", Code.InvalidArgument);
      const delivery = await store.deliveries.get(req.id);
      if (!delivery) throw new ConnectError(`delivery ${req.id} not found`, Code.NotFound);
      await managedPublisher(delivery.publisherId, ctx);
      if (delivery.state !== "failed" && delivery.state !== "pending") {
        throw new ConnectError(
          `delivery ${delivery.id} is ${delivery.state}: only failed or pending deliveries can be retried`,
          Code.FailedPrecondition,
        );
      }
      const newer = await store.deliveries.newerThan(delivery);
      if (newer) {
        throw new ConnectError(
          `delivery ${delivery.id} is outdated: delivery ${newer.id} (revision ${newer.revision}) of the same publisher is newer; retry that one`,
          Code.FailedPrecondition,
        );
      }
      const retried = await store.deliveries.retry(delivery.id, now());
      if (!retried) {
        throw new ConnectError(`delivery ${delivery.id} changed state meanwhile; look again`, Code.FailedPrecondition);
      }
      await publishQueued(options.events, store.deliveries, [retried], [], options.logger, { reason: "retry" });
      options.onQueued();
      return { delivery: deliveryToProto(retried) };
    },
  };
}
