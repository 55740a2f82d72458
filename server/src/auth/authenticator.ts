import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { NodeRecord } from "../store/node-store.js";
import type { Store } from "../store/store.js";
import { hashSecret } from "./secrets.js";
import { principalKey, type Principal } from "./principal.js";

/**
 * RPCs that serve callers without a bearer token on purpose, as "service/method". The
 * NamespaceService reads are here so that public namespaces are readable anonymously; their
 * handlers enforce each namespace's visibility (auth/namespace-access.ts). Server reflection
 * serves the contract, which is public (the .proto files are in the repository).
 */
const PUBLIC_METHODS = new Set([
  "mottainai.v1.NodeService/RegisterNode",
  "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
  ...["GetNamespace", "ListNamespaces", "ListRevisions", "GetRevision", "DiffRevisions", "ListFiles", "DownloadFile"].map(
    (method) => `mottainai.v1.NamespaceService/${method}`,
  ),
]);

/**
 * Creates the interceptor that authenticates every RPC: it resolves `Authorization: Bearer …` to a
 * user (API token), a node (node credential) or a running task (task token, see resolvePrincipal)
 * and stores it under principalKey. A call without a
 * valid token fails with Unauthenticated before its handler runs, except for PUBLIC_METHODS,
 * which run as anonymous when no token is given.
 */
export function createAuthenticator(store: Store, now: () => number = Date.now): Interceptor {
  return (next) => async (req) => {
    const header = req.header.get("authorization");
    let principal: Principal = { kind: "anonymous" };
    if (header) {
      principal = await resolve(store, bearerSecret(header), now());
    } else if (!PUBLIC_METHODS.has(`${req.service.typeName}/${req.method.name}`)) {
      throw new ConnectError("missing bearer token", Code.Unauthenticated);
    }
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}

/**
 * The node whose credential an `authorization` header carries, for the agent stream (which does
 * not pass through the interceptor). Unauthenticated for a missing or malformed header, an
 * unknown secret, or one that is not a node credential.
 */
export async function authenticateNode(store: Store, header: string | undefined): Promise<NodeRecord> {
  if (!header) throw new ConnectError("missing bearer token", Code.Unauthenticated);
  const principal = await resolve(store, bearerSecret(header), Date.now());
  if (principal.kind !== "node") throw new ConnectError("this call needs a node credential", Code.Unauthenticated);
  return principal.node;
}

function bearerSecret(header: string): string {
  const m = header.match(/^Bearer\s+(\S+)$/i);
  if (!m?.[1]) throw new ConnectError('malformed authorization header: expected "Bearer <token>"', Code.Unauthenticated);
  return m[1];
}

/**
 * The principal a bearer secret stands for; Unauthenticated when it stands for none. Task tokens
 * (`mtt_…`) are valid only while their attempt is the task's current one and has not ended:
 * a retried task's previous token, or any token after its attempt finished, is refused.
 * Shared by the RPC interceptor and the plain HTTP file routes.
 */
export async function resolvePrincipal(store: Store, secret: string, now: number = Date.now()): Promise<Principal> {
  return resolve(store, secret, now);
}

async function resolve(store: Store, secret: string, now: number): Promise<Principal> {
  const hash = hashSecret(secret);
  if (secret.startsWith("mtt_")) {
    const attempt = await store.tasks.attemptByTokenHash(hash);
    const task = attempt && (await store.tasks.get(attempt.taskId));
    if (attempt && task && task.attempt === attempt.number && attempt.endTime === null && task.leaseId !== "") {
      return { kind: "task", task, attempt: attempt.number };
    }
  } else if (secret.startsWith("mnc_")) {
    const node = await store.nodes.getByCredentialHash(hash);
    if (node) return { kind: "node", node };
  } else {
    const token = await store.users.getTokenByHash(hash);
    if (token && (token.expireTime === 0 || token.expireTime > now)) {
      const user = await store.users.get(token.userId);
      if (user) {
        if (now - token.lastUseTime > 60_000) await store.users.touchToken(token.id, now);
        return { kind: "user", user };
      }
    }
  }
  throw new ConnectError("invalid or expired token", Code.Unauthenticated);
}
