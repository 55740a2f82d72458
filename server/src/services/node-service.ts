import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { NodeService } from "@mottainai/proto";
import { isPrivileged, requireAdmin, requireUser } from "../auth/principal.js";
import { generateSecret, hashSecret, newId } from "../auth/secrets.js";
import { nodeToProto } from "../convert/node-convert.js";
import type { Scheduler } from "../dispatch/scheduler.js";
import type { EventBus } from "../events/event-bus.js";
import type { NodeRecord, RegistrationTokenRecord } from "../store/node-store.js";
import type { Store } from "../store/store.js";

const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** NodeService: node listing and control (managers and admins), registration (token-authenticated). */
export function createNodeService(
  store: Store,
  scheduler: Scheduler,
  events: EventBus,
  now: () => number = Date.now,
): ServiceImpl<typeof NodeService> {
  /**
   * Running task ids per node, from the store rather than this server's live view: with other
   * servers on the database, a node connected to one of them runs tasks this server never saw.
   */
  const runningByNode = async (): Promise<Map<string, string[]>> => {
    const running = new Map<string, string[]>();
    for (const task of await store.tasks.listActive()) {
      if (!task.nodeId) continue;
      const ids = running.get(task.nodeId);
      if (ids) ids.push(task.id);
      else running.set(task.nodeId, [task.id]);
    }
    return running;
  };
  const view = (n: NodeRecord, running: Map<string, string[]>) =>
    nodeToProto(n, scheduler.isOnline(n.id, n), running.get(n.id) ?? []);
  const requireManager = (ctx: HandlerContext) => {
    const user = requireUser(ctx);
    if (!isPrivileged(user)) throw new ConnectError("managing nodes is for managers and admins", Code.PermissionDenied);
    return user;
  };
  const load = async (ctx: HandlerContext, idOrName: string): Promise<NodeRecord> => {
    requireManager(ctx);
    if (!idOrName) throw new ConnectError("id: a node id or name is required", Code.InvalidArgument);
    const node = (await store.nodes.get(idOrName)) ?? (await store.nodes.getByName(idOrName));
    if (!node) throw new ConnectError(`node ${idOrName} not found`, Code.NotFound);
    return node;
  };
  const tokenView = (t: RegistrationTokenRecord) => ({
    id: t.id,
    description: t.description,
    createTime: timestampFromMs(t.createTime),
    expireTime: t.expireTime ? timestampFromMs(t.expireTime) : undefined,
    revoked: t.revoked,
  });
  const setDraining = async (ctx: HandlerContext, id: string, draining: boolean) => {
    const node = await load(ctx, id);
    await store.nodes.setDraining(node.id, draining);
    const updated = { ...node, draining };
    scheduler.setDraining(updated);
    await events.publish(draining ? "node.drained" : "node.resumed", node.id, { kind: "node", value: updated });
    return { node: view(updated, await runningByNode()) };
  };

  return {
    async listNodes(_req, ctx) {
      requireManager(ctx);
      const [nodes, running] = await Promise.all([store.nodes.list(), runningByNode()]);
      return { nodes: nodes.map((n) => view(n, running)) };
    },
    async getNode(req, ctx) {
      const node = await load(ctx, req.id);
      return { node: view(node, await runningByNode()) };
    },
    drainNode: (req, ctx) => setDraining(ctx, req.id, true),
    resumeNode: (req, ctx) => setDraining(ctx, req.id, false),
    async deleteNode(req, ctx) {
      const node = await load(ctx, req.id);
      scheduler.forget(node.id);
      await store.nodes.delete(node.id);
      await events.publish("node.removed", node.id, { kind: "node", value: node });
      return {};
    },
    async createRegistrationToken(req, ctx) {
      requireAdmin(ctx);
      const secret = generateSecret("mrt");
      const record: RegistrationTokenRecord = {
        id: newId(),
        description: req.description,
        hash: hashSecret(secret),
        createTime: now(),
        expireTime: req.expireTime ? timestampMs(req.expireTime) : 0,
        revoked: false,
      };
      await store.nodes.createRegistrationToken(record);
      return { registrationToken: tokenView(record), secret };
    },
    async listRegistrationTokens(_req, ctx) {
      requireAdmin(ctx);
      return { registrationTokens: (await store.nodes.listRegistrationTokens()).map(tokenView) };
    },
    async revokeRegistrationToken(req, ctx) {
      requireAdmin(ctx);
      if (!(await store.nodes.revokeRegistrationToken(req.id))) {
        throw new ConnectError(`registration token ${req.id} not found`, Code.NotFound);
      }
      return {};
    },
    async registerNode(req) {
      const token = await store.nodes.getRegistrationTokenByHash(hashSecret(req.registrationToken));
      if (!token || token.revoked || (token.expireTime !== 0 && token.expireTime <= now())) {
        throw new ConnectError("registration token is invalid, revoked or expired", Code.Unauthenticated);
      }
      if (!NODE_NAME.test(req.name)) {
        throw new ConnectError(
          `name: "${req.name}" is not a node name (letters, digits, '.', '_', '-', at most 63)`,
          Code.InvalidArgument,
        );
      }
      const credential = generateSecret("mnc");
      const t = now();
      const node = await store.nodes.upsertByName({
        id: newId(),
        name: req.name,
        hostname: req.hostname,
        credentialHash: hashSecret(credential),
        draining: false,
        labels: {},
        queues: [],
        executors: [],
        capacity: 0,
        agentVersion: "",
        createTime: t,
        connectTime: 0,
        lastHeartbeatTime: 0,
      });
      await events.publish("node.registered", node.id, { kind: "node", value: node });
      return { nodeId: node.id, credential };
    },
  };
}
