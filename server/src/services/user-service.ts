import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Role, UserSchema, UserService } from "@mottainai/proto";
import { requireAdmin, requireUser } from "../auth/principal.js";
import type { Store } from "../store/store.js";
import type { UserRecord, UserRole } from "../store/user-store.js";

const ROLE: Record<UserRole, Role> = { admin: Role.ADMIN, manager: Role.MANAGER, user: Role.USER };

/** The wire form of a user: never the password hash. */
export function userToProto(u: UserRecord) {
  return create(UserSchema, { id: u.id, name: u.name, email: u.email, role: ROLE[u.role], createTime: timestampFromMs(u.createTime) });
}

/** UserService: the current user and, for admins, the user list. Account changes come later. */
export function createUserService(store: Store): Partial<ServiceImpl<typeof UserService>> {
  return {
    getCurrentUser(_req, ctx) {
      return { user: userToProto(requireUser(ctx)) };
    },
    async getUser(req, ctx) {
      const caller = requireUser(ctx);
      const user = (await store.users.get(req.id)) ?? (await store.users.getByName(req.id));
      if (!user || (user.id !== caller.id && caller.role !== "admin")) {
        throw new ConnectError(`user ${req.id} not found`, Code.NotFound);
      }
      return { user: userToProto(user) };
    },
    async listUsers(_req, ctx) {
      requireAdmin(ctx);
      return { users: (await store.users.list()).map(userToProto) };
    },
  };
}
