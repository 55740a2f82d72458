import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  ArtefactService,
  EventService,
  NamespaceService,
  NodeService,
  OrganizationService,
  PipelineService,
  PlanService,
  PublisherService,
  SecretService,
  SettingService,
  StateService,
  StorageService,
  TaskService,
  TokenService,
  UserService,
  WebhookService,
} from "@mottainai/proto";
import type { Logger } from "pino";
import { authenticateNode, createAuthenticator } from "./auth/authenticator.js";
import { bootstrapAdmin } from "./auth/bootstrap.js";
import type { ServerConfig } from "./config.js";
import { Scheduler } from "./dispatch/scheduler.js";
import { EventBus } from "./events/event-bus.js";
import { EventRetention } from "./events/event-retention.js";
import { registerReflection } from "./reflection/index.js";
import { createGrpcAgentRoute } from "./http/grpc-agent-route.js";
import { listen, type Listener } from "./http/listener.js";
import { TaskLogStore } from "./logs/task-log-store.js";
import { openBlobStore } from "./blob/open-blob-store.js";
import { createAgentService } from "./services/agent-service.js";
import { TaskRetention } from "./tasks/task-retention.js";
import { createArtefactService } from "./services/artefact-service.js";
import { createStorageService } from "./services/storage-service.js";
import { artefactRoute, createFileRoutes, storageRoute } from "./http/file-routes.js";
import { createEventService } from "./services/event-service.js";
import { createNodeService } from "./services/node-service.js";
import { createTaskService } from "./services/task-service.js";
import { createTokenService } from "./services/token-service.js";
import { createUserService } from "./services/user-service.js";
import { createNamespaceService } from "./services/namespace-service.js";
import { createOrganizationService } from "./services/organization-service.js";
import { NamespacePublisher } from "./namespaces/namespace-publisher.js";
import { createPublishOnSuccess } from "./namespaces/task-artefact-publishing.js";
import { namespaceRoute } from "./http/namespace-route.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";
import { openMongoStore } from "./mongo/mongo-store.js";
import { BlobCollector } from "./blob/blob-collector.js";
import { createGitDeliverer } from "./delivery/git-deliverer.js";
import { createRsyncDeliverer } from "./delivery/rsync-deliverer.js";
import { DeliveryWorker } from "./delivery/delivery-worker.js";
import { namespaceRevisionFiles } from "./delivery/revision-files.js";
import { TagMoveFeed } from "./delivery/tag-move-feed.js";
import { newId } from "./auth/secrets.js";
import { createPublisherService } from "./services/publisher-service.js";
import { createPipelineService } from "./services/pipeline-service.js";
import { createPipeline, PipelineAdvancer, type PipelineContext } from "./pipelines/index.js";
import { createPlanService } from "./services/plan-service.js";
import { createTaskLauncher } from "./plans/plan-target-launcher.js";
import { PlanScheduler } from "./plans/plan-scheduler.js";
import type { Store } from "./store/store.js";
import { createWebRoute } from "./web/index.js";
import { createMetricsRoute, createRpcMetricsInterceptor, createServerMetrics, meteredBlobStore } from "./metrics/index.js";

/** A running server. */
export interface MottainaiServer {
  /** The bound port. */
  readonly port: number;
  /** The bootstrap admin token when this start created it (already written to adminTokenFile). */
  readonly adminToken: string | undefined;
  /** Graceful shutdown: stop accepting, end streams, close the store. Idempotent. */
  close(): Promise<void>;
}

/** Largest message accepted on any RPC (log chunks and upload chunks are far smaller). */
const READ_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Starts the server: opens the configured metadata store (SQLite under config.dataDir, or
 * MongoDB) and the blob store and log directory, creates the admin on first start, and serves
 * every mottainai.v1 service on one port.
 * Services not built yet answer Unimplemented.
 */
export async function startServer(config: ServerConfig, logger: Logger): Promise<MottainaiServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const blobStore = await openBlobStore(config, logger.child({ component: "blobs" }));
  const store: Store =
    config.store.backend === "mongodb"
      ? await openMongoStore(config.store.url)
      : openSqliteStore(join(config.dataDir, "mottainai.db"));
  logger.info({ store: config.store.backend }, "metadata store open");
  const adminToken = await bootstrapAdmin(store, Date.now());
  if (adminToken) writeFileSync(config.adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
  // A MongoDB database may be shared by several servers: events, dispatch and logs then work
  // across them (docs/mongodb.md, "Running several servers").
  const shared = config.store.backend === "mongodb";
  const events = new EventBus(
    store.events,
    Date.now,
    shared ? { logger: logger.child({ component: "event-feed" }), pollIntervalMs: config.eventPollIntervalMs } : undefined,
  );
  await events.start();
  // One registry per server (GET /metrics); the scheduler is read at scrape time.
  let connectedAgents = () => 0;
  const metrics = createServerMetrics({
    countUnfinished: () => store.tasks.countUnfinished(),
    connectedAgents: () => connectedAgents(),
  });
  const blobs = meteredBlobStore(blobStore.blobs, metrics.blobs);
  // What clients upload and download: the view handed to upload/download services and file routes.
  const transferBlobs = meteredBlobStore(blobs, metrics.transfers);
  const logs = new TaskLogStore({
    dir: join(config.dataDir, "logs"),
    segments: store.logSegments,
    blobs,
    logger: logger.child({ component: "task-logs" }),
    shared,
  });
  const publisher = new NamespacePublisher({ store: store.namespaces, events });
  const scheduler = new Scheduler({
    store,
    onSuccess: createPublishOnSuccess({ store, publisher, events, logger: logger.child({ component: "namespace-publish" }) }),
    logs,
    events,
    logger: logger.child({ component: "scheduler" }),
    leaseTtlMs: config.leaseTtlMs,
    restartGraceMs: config.restartGraceMs,
    disconnectGraceMs: config.heartbeatIntervalMs,
    maxInfraRetries: config.maxInfraRetries,
    shared,
    metrics: metrics.scheduler,
  });
  connectedAgents = () => scheduler.connectedAgents();
  await scheduler.start();
  const advancer = new PipelineAdvancer({
    store,
    events,
    scheduler,
    logger: logger.child({ component: "pipelines" }),
  });
  await advancer.start();
  /** Pipeline operations (PipelineService, plans firing pipelines: createPipeline(pipelines, …)). */
  const pipelines: PipelineContext = { store, events, advancer, stopTask: (task) => scheduler.stop(task), logs };

  // Namespace delivery (publishers) and blob garbage collection.
  const deliveryDir = join(config.dataDir, "delivery");
  const deliveryLogger = logger.child({ component: "delivery" });
  const deliveryWorker = new DeliveryWorker({
    store: store.deliveries,
    revisionFiles: namespaceRevisionFiles(store.namespaces),
    blobs,
    deliverers: {
      rsync: createRsyncDeliverer({ workDir: deliveryDir, timeoutMs: config.deliveryTimeoutMs }),
      git: createGitDeliverer({ workDir: deliveryDir, timeoutMs: config.deliveryTimeoutMs }),
    },
    events,
    logger: deliveryLogger,
    workDir: deliveryDir,
    maxAttempts: config.deliveryMaxAttempts,
    backoff: { baseMs: config.deliveryBackoffMs },
  });
  await deliveryWorker.start();
  const tagMoves = new TagMoveFeed({
    store: store.deliveries,
    eventLog: store.events,
    bus: events,
    onQueued: () => deliveryWorker.notify(),
    logger: deliveryLogger,
    newId,
  });
  await tagMoves.start();
  const taskRetention = new TaskRetention({
    store,
    logs,
    events,
    retentionMs: config.taskRetentionMs,
    logger: logger.child({ component: "task-retention" }),
  });
  const blobCollector = new BlobCollector({
    blobs,
    references: store.blobReferences,
    logger: logger.child({ component: "blob-gc" }),
    retentionMs: config.blobRetentionMs,
    intervalMs: config.gcIntervalMs,
    beforeCollection: () => taskRetention.sweep(),
  });
  blobCollector.start();
  const planLauncher = createTaskLauncher({
    tasks: store.tasks,
    events,
    kick: () => scheduler.kick(true),
    async launchPipeline({ id, ownerId, spec }) {
      if (await store.pipelines.get(id)) return false;
      try {
        await createPipeline(pipelines, ownerId, spec, { id });
      } catch (err) {
        if (await store.pipelines.get(id)) return false;
        throw err;
      }
      return true;
    },
  });
  const plans = new PlanScheduler({
    plans: store.plans,
    launcher: planLauncher,
    events,
    logger: logger.child({ component: "plans" }),
    newId,
    sweepIntervalMs: config.planSweepIntervalMs,
    lateGraceMs: config.planLateGraceMs,
  });
  await plans.start();
  const eventRetention = new EventRetention({
    store: store.events,
    retentionMs: config.eventRetentionMs,
    maxCount: config.eventRetentionCount,
    logger: logger.child({ component: "event-retention" }),
  });
  eventRetention.start();
  const stopBackground = async () => {
    await plans.close();
    await advancer.close();
    await events.close();
    await tagMoves.close();
    await deliveryWorker.close();
    await blobCollector.close();
    await eventRetention.close();
  };

  const connectHandler = connectNodeAdapter({
    readMaxBytes: READ_MAX_BYTES,
    interceptors: [createRpcMetricsInterceptor(metrics.rpcs), createAuthenticator(store)],
    routes: (router) => {
      router.service(
        TaskService,
        createTaskService({
          store,
          scheduler,
          logs,
          events,
          remoteLogPollMs: shared ? config.eventPollIntervalMs : 0,
        }),
      );
      router.service(NodeService, createNodeService(store, scheduler, events));
      router.service(EventService, createEventService(store, events, metrics.subscribers));
      router.service(UserService, createUserService(store, Date.now, events));
      router.service(TokenService, createTokenService(store, Date.now, events));
      router.service(
        ArtefactService,
        createArtefactService({ store, blobs: transferBlobs, events, maxUploadBytes: config.maxUploadBytes }),
      );
      router.service(
        StorageService,
        createStorageService({ store, blobs: transferBlobs, events, maxUploadBytes: config.maxUploadBytes }),
      );
      router.service(
        NamespaceService,
        createNamespaceService({ store, blobs: transferBlobs, publisher, events, maxUploadBytes: config.maxUploadBytes }),
      );
      router.service(OrganizationService, createOrganizationService({ store }));
      router.service(
        PublisherService,
        createPublisherService({ store, events, onQueued: () => deliveryWorker.notify(), logger: deliveryLogger }),
      );
      router.service(PipelineService, createPipelineService(pipelines));
      router.service(PlanService, createPlanService({ store, scheduler: plans, launcher: planLauncher, events, newId }));
      for (const service of [SecretService, SettingService, WebhookService, StateService]) {
        router.service(service, {});
      }
      registerReflection(router);
    },
  });

  // AgentService.Connect: plain gRPC on the HTTP/2 stream, without connect-es (memory per agent).
  const agentRoute = createGrpcAgentRoute({
    service: createAgentService(scheduler, config, logger.child({ component: "agent-stream" })),
    authenticate: (authorization) => authenticateNode(store, authorization),
    maxMessageBytes: READ_MAX_BYTES,
    logger: logger.child({ component: "agent-stream" }),
  });

  // Plain HTTP GET/HEAD with Range for files; add a FileRoute here for another family of URLs.
  const fileRoutes = createFileRoutes({
    store,
    blobs: transferBlobs,
    routes: [artefactRoute(store), storageRoute(store), namespaceRoute(store, publisher)],
    logger: logger.child({ component: "file-routes" }),
  });

  const metricsRoute = createMetricsRoute({ registry: metrics.registry, token: config.metricsToken });

  const webRoute = createWebRoute(config.webDir ?? fileURLToPath(new URL("../../web/dist", import.meta.url)));

  let listener: Listener;
  try {
    listener = await listen(
      config.host,
      config.port,
      (req, res) => {
        if (req.url === "/healthz" && req.method === "GET") {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ status: "ok" }));
          return;
        }
        if (!metricsRoute(req, res) && !agentRoute(req, res) && !fileRoutes(req, res) && !webRoute(req, res)) {
          connectHandler(req, res);
        }
      },
      logger,
    );
  } catch (err) {
    scheduler.close();
    await stopBackground();
    await store.close();
    await blobStore.close();
    throw err;
  }
  logger.info({ host: config.host, port: listener.port, dataDir: config.dataDir }, "mottainai-server listening");

  let closing: Promise<void> | undefined;
  return {
    port: listener.port,
    adminToken,
    close() {
      closing ??= (async () => {
        scheduler.close();
        await listener.close(2000);
        await stopBackground();
        await store.close();
        await blobStore.close();
        logger.info("mottainai-server stopped");
      })();
      return closing;
    },
  };
}
