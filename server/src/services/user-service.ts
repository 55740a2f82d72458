import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Role, UserSchema, UserService } from "@mottainai/proto";
import { requireAdmin, requireUser } from "../auth/principal.js";
import { hashPassword } from "../auth/password.js";
import { newId } from "../auth/secrets.js";
import type { EventBus } from "../events/event-bus.js";
import type { Store } from "../store/store.js";
import type { UserRecord, UserRole } from "../store/user-store.js";

const ROLE: Record<UserRole, Role> = { admin: Role.ADMIN, manager: Role.MANAGER, user: Role.USER };

/** The wire form of a user: never the password hash. */
export function userToProto(u: UserRecord) {
  return create(UserSchema, {
    id: u.id,
    name: u.name,
    email: u.email,
    role: ROLE[u.role],
    createTime: timestampFromMs(u.createTime),
  });
}

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** UserService: the current user; admins create and list users. Updates and deletion come later. */
export function createUserService(
  store: Store,
  now: () => number = Date.now,
  events?: Pick<EventBus, "publish">,
): Partial<ServiceImpl<typeof UserService>> {
  return {
    async createUser(req, ctx) {
      requireAdmin(ctx);
      if (!USER_NAME.test(req.name)) {
        throw new ConnectError(
          `name: "${req.name}" is not a user name (letters, digits, '.', '_', '-', at most 63)`,
          Code.InvalidArgument,
        );
      }
      if (await store.users.getByName(req.name)) throw new ConnectError(`user ${req.name} already exists`, Code.AlreadyExists);
      const role = (Object.keys(ROLE) as UserRole[]).find((r) => ROLE[r] === req.role) ?? "user";
      const user: UserRecord = {
        id: newId(),
        name: req.name,
        email: req.email,
        role,
        passwordHash: req.password ? await hashPassword(req.password) : "",
        createTime: now(),
      };
      await store.users.create(user);
      await events?.publish("user.created", user.id, undefined, { name: user.name, role });
      return { user: userToProto(user) };
    },
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
