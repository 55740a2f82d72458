import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  AgentService,
  ArtefactService,
  EventService,
  NamespaceService,
  NodeService,
  OrganizationService,
  PipelineService,
  PlanService,
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
import { createAuthenticator } from "./auth/authenticator.js";
import { bootstrapAdmin } from "./auth/bootstrap.js";
import type { ServerConfig } from "./config.js";
import { Scheduler } from "./dispatch/scheduler.js";
import { EventBus } from "./events/event-bus.js";
import { listen, type Listener } from "./http/listener.js";
import { TaskLogStore } from "./logs/task-log-store.js";
import { LocalBlobStore } from "./blob/local-blob-store.js";
import { createAgentService } from "./services/agent-service.js";
import { createEventService } from "./services/event-service.js";
import { createNodeService } from "./services/node-service.js";
import { createTaskService } from "./services/task-service.js";
import { createTokenService } from "./services/token-service.js";
import { createUserService } from "./services/user-service.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";
import type { Store } from "./store/store.js";

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
 * Starts the server: opens the embedded store and blob/log directories under config.dataDir,
 * creates the admin on first start, and serves every mottainai.v1 service on one port.
 * Services not built yet answer Unimplemented.
 */
export async function startServer(config: ServerConfig, logger: Logger): Promise<MottainaiServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store: Store = openSqliteStore(join(config.dataDir, "mottainai.db"));
  const adminToken = await bootstrapAdmin(store, Date.now());
  if (adminToken) writeFileSync(config.adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
  const events = new EventBus(store.events);
  const blobs = new LocalBlobStore(join(config.dataDir, "blobs"));
  const logs = new TaskLogStore({
    dir: join(config.dataDir, "logs"),
    segments: store.logSegments,
    blobs,
    logger: logger.child({ component: "task-logs" }),
  });
  const scheduler = new Scheduler({
    store,
    logs,
    events,
    logger: logger.child({ component: "scheduler" }),
    leaseTtlMs: config.leaseTtlMs,
    restartGraceMs: config.restartGraceMs,
    disconnectGraceMs: config.heartbeatIntervalMs,
    maxInfraRetries: config.maxInfraRetries,
  });
  await scheduler.start();

  const connectHandler = connectNodeAdapter({
    readMaxBytes: READ_MAX_BYTES,
    interceptors: [createAuthenticator(store)],
    routes: (router) => {
      router.service(TaskService, createTaskService({ store, scheduler, logs, events }));
      router.service(AgentService, createAgentService(scheduler, config, logger.child({ component: "agent-stream" })));
      router.service(NodeService, createNodeService(store, scheduler, events));
      router.service(EventService, createEventService(store, events));
      router.service(UserService, createUserService(store));
      router.service(TokenService, createTokenService(store));
      for (const service of [
        PipelineService,
        PlanService,
        NamespaceService,
        StorageService,
        ArtefactService,
        OrganizationService,
        SecretService,
        SettingService,
        WebhookService,
        StateService,
      ]) {
        router.service(service, {});
      }
    },
  });

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
        connectHandler(req, res);
      },
      logger,
    );
  } catch (err) {
    scheduler.close();
    await store.close();
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
        await store.close();
        logger.info("mottainai-server stopped");
      })();
      return closing;
    },
  };
}
