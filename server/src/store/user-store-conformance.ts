import assert from "node:assert/strict";
import { freshStore, type StoreFactory } from "./conformance-harness.js";
import type { TokenRecord, UserRecord } from "./user-store.js";

const user = (id: string, name: string, role: UserRecord["role"] = "user"): UserRecord => ({
  id,
  name,
  email: `${name}@example.com`,
  role,
  passwordHash: role === "admin" ? "" : `scrypt$${name}`,
  createTime: 5,
});

const apiToken = (id: string, userId: string, createTime: number): TokenRecord => ({
  id,
  name: `token ${id}`,
  userId,
  hash: `hash-${id}`,
  createTime,
  lastUseTime: 0,
  expireTime: 0,
});

/** UserStore behaviour every backend shares: users by id and name, API tokens by hash. */
export function userStoreConformance(factory: StoreFactory): void {
  describe("UserStore", () => {
    const s = freshStore(factory);

    it("creates users, finds them by id and name, lists them by name, refuses a taken name", async () => {
      assert.equal(await s.store.users.count(), 0);
      await s.store.users.create(user("u2", "zoe", "admin"));
      await s.store.users.create(user("u1", "adam"));
      assert.equal(await s.store.users.count(), 2);
      assert.deepEqual(await s.store.users.get("u2"), user("u2", "zoe", "admin"));
      assert.deepEqual(await s.store.users.getByName("adam"), user("u1", "adam"));
      assert.equal(await s.store.users.get("nope"), undefined);
      assert.equal(await s.store.users.getByName("nope"), undefined);
      assert.deepEqual(
        (await s.store.users.list()).map((u) => u.name),
        ["adam", "zoe"],
      );
      await assert.rejects(s.store.users.create(user("u3", "adam")));
      assert.equal(await s.store.users.count(), 2);
    });

    it("keeps API tokens by hash, lists them oldest first per user, touches and deletes them", async () => {
      await s.store.users.create(user("u1", "adam"));
      await s.store.users.create(user("u2", "zoe"));
      await s.store.users.createToken(apiToken("t3", "u1", 30));
      await s.store.users.createToken({ ...apiToken("t1", "u1", 10), expireTime: 1000 });
      await s.store.users.createToken(apiToken("t2", "u2", 20));
      assert.deepEqual(await s.store.users.getTokenByHash("hash-t1"), { ...apiToken("t1", "u1", 10), expireTime: 1000 });
      assert.equal(await s.store.users.getTokenByHash("nope"), undefined);
      assert.deepEqual(
        (await s.store.users.listTokens("u1")).map((t) => t.id),
        ["t1", "t3"],
      );
      assert.deepEqual(
        (await s.store.users.listTokens()).map((t) => t.id),
        ["t1", "t2", "t3"],
      );
      assert.deepEqual(await s.store.users.listTokens("nobody"), []);
      await s.store.users.touchToken("t1", 77);
      assert.equal((await s.store.users.getTokenByHash("hash-t1"))?.lastUseTime, 77);
      await s.store.users.touchToken("nope", 77);
      assert.equal(await s.store.users.deleteToken("t1"), true);
      assert.equal(await s.store.users.deleteToken("t1"), false);
      assert.equal(await s.store.users.getTokenByHash("hash-t1"), undefined);
      await assert.rejects(s.store.users.createToken({ ...apiToken("t4", "u1", 40), hash: "hash-t2" }));
    });
  });
}
