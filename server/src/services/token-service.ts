import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { TokenSchema, TokenService } from "@mottainai/proto";
import { requireUser } from "../auth/principal.js";
import { generateSecret, hashSecret, newId } from "../auth/secrets.js";
import type { EventBus } from "../events/event-bus.js";
import type { Store } from "../store/store.js";
import type { TokenRecord } from "../store/user-store.js";

const view = (t: TokenRecord) =>
  create(TokenSchema, {
    id: t.id,
    name: t.name,
    userId: t.userId,
    createTime: timestampFromMs(t.createTime),
    lastUseTime: t.lastUseTime ? timestampFromMs(t.lastUseTime) : undefined,
    expireTime: t.expireTime ? timestampFromMs(t.expireTime) : undefined,
  });

/** TokenService: a user's own API tokens (admins see all). Secrets are shown once. */
export function createTokenService(
  store: Store,
  now: () => number = Date.now,
  events?: Pick<EventBus, "publish">,
): ServiceImpl<typeof TokenService> {
  return {
    async createToken(req, ctx) {
      const caller = requireUser(ctx);
      if (!req.name) throw new ConnectError("name: a token name is required", Code.InvalidArgument);
      let user = caller;
      if (req.userId && req.userId !== caller.id) {
        if (caller.role !== "admin")
          throw new ConnectError("user_id: only admins create tokens for other users", Code.PermissionDenied);
        const other = (await store.users.get(req.userId)) ?? (await store.users.getByName(req.userId));
        if (!other) throw new ConnectError(`user_id: user ${req.userId} not found`, Code.NotFound);
        user = other;
      }
      const secret = generateSecret("mtk");
      const record: TokenRecord = {
        id: newId(),
        name: req.name,
        userId: user.id,
        hash: hashSecret(secret),
        createTime: now(),
        lastUseTime: 0,
        expireTime: req.expireTime ? timestampMs(req.expireTime) : 0,
      };
      await store.users.createToken(record);
      await events?.publish("token.created", record.id, undefined, { owner_id: user.id, name: record.name });
      return { token: view(record), secret };
    },
    async listTokens(_req, ctx) {
      const user = requireUser(ctx);
      return { tokens: (await store.users.listTokens(user.role === "admin" ? undefined : user.id)).map(view) };
    },
    async deleteToken(req, ctx) {
      const user = requireUser(ctx);
      const token = (await store.users.listTokens(user.role === "admin" ? undefined : user.id)).find((t) => t.id === req.id);
      if (!token) throw new ConnectError(`token ${req.id} not found`, Code.NotFound);
      await store.users.deleteToken(token.id);
      await events?.publish("token.deleted", token.id, undefined, { owner_id: token.userId, name: token.name });
      return {};
    },
  };
}
