import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UserRecord } from "../store/user-store.js";
import type { NodeRecord } from "../store/node-store.js";
import type { TaskRecord } from "../store/task-store.js";

/**
 * Who is calling: a user (through an API token), a node (through its credential), a running
 * task (through its attempt's task token: it may touch only its own artefacts and the inputs its
 * definition declares), or nobody.
 */
export type Principal =
  | { kind: "user"; user: UserRecord }
  | { kind: "node"; node: NodeRecord }
  | { kind: "task"; task: TaskRecord; attempt: number }
  | { kind: "anonymous" };

/** Context key under which the authentication interceptor stores the caller. */
export const principalKey = createContextKey<Principal>({ kind: "anonymous" }, { description: "caller" });

/** The calling user; Unauthenticated for anyone else. */
export function requireUser(ctx: HandlerContext): UserRecord {
  const p = ctx.values.get(principalKey);
  if (p.kind !== "user") throw new ConnectError("this call needs a user's API token", Code.Unauthenticated);
  return p.user;
}

/** Whether the user may see and change everything (managers and admins). */
export function isPrivileged(user: UserRecord): boolean {
  return user.role === "admin" || user.role === "manager";
}

/** The calling user if an admin; PermissionDenied otherwise. */
export function requireAdmin(ctx: HandlerContext): UserRecord {
  const user = requireUser(ctx);
  if (user.role !== "admin") throw new ConnectError("this call is for admins", Code.PermissionDenied);
  return user;
}
