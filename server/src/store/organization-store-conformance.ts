import assert from "node:assert/strict";
import { freshStore, type StoreFactory } from "./conformance-harness.js";
import type { OrganizationRecord } from "./organization-store.js";
import type { UserRecord } from "./user-store.js";

const user = (id: string): UserRecord => ({ id, name: `user-${id}`, email: "", role: "user", passwordHash: "", createTime: 1 });

const org = (id: string, name: string, members: OrganizationRecord["members"] = []): OrganizationRecord => ({
  id,
  name,
  createTime: 3,
  members,
});

/** OrganizationStore behaviour every backend shares: names unique, members and roles, cascades. */
export function organizationStoreConformance(factory: StoreFactory): void {
  describe("OrganizationStore", () => {
    const s = freshStore(factory);

    beforeEach(async () => {
      for (const id of ["u1", "u2", "u3"]) await s.store.users.create(user(id));
    });

    it("creates, finds by id and name, refuses a taken name, lists all or a user's", async () => {
      const orgs = s.store.organizations;
      assert.equal(await orgs.create(org("o2", "zeta", [{ userId: "u1", role: "owner" }])), true);
      assert.equal(await orgs.create(org("o1", "alpha", [{ userId: "u2", role: "member" }])), true);
      assert.equal(await orgs.create(org("o3", "alpha")), false);
      assert.deepEqual(await orgs.get("o2"), org("o2", "zeta", [{ userId: "u1", role: "owner" }]));
      assert.deepEqual(await orgs.getByName("alpha"), org("o1", "alpha", [{ userId: "u2", role: "member" }]));
      assert.equal(await orgs.get("nope"), undefined);
      assert.deepEqual(
        (await orgs.list()).map((o) => o.name),
        ["alpha", "zeta"],
      );
      assert.deepEqual(
        (await orgs.list("u1")).map((o) => o.name),
        ["zeta"],
      );
      assert.deepEqual(await orgs.list("u3"), []);
    });

    it("adds members, changes roles, removes members; a missing organization or user is refused", async () => {
      const orgs = s.store.organizations;
      await orgs.create(org("o1", "team"));
      assert.equal(await orgs.setMember("o1", { userId: "u2", role: "member" }), true);
      assert.equal(await orgs.setMember("o1", { userId: "u1", role: "member" }), true);
      assert.equal(await orgs.setMember("o1", { userId: "u1", role: "owner" }), true);
      assert.equal(await orgs.memberRole("o1", "u1"), "owner");
      assert.equal(await orgs.memberRole("o1", "u3"), undefined);
      assert.deepEqual((await orgs.get("o1"))?.members, [
        { userId: "u1", role: "owner" },
        { userId: "u2", role: "member" },
      ]);
      assert.equal(await orgs.setMember("nope", { userId: "u1", role: "member" }), false);
      assert.equal(await orgs.setMember("o1", { userId: "nobody", role: "member" }), false);
      assert.equal(await orgs.removeMember("o1", "u2"), true);
      assert.equal(await orgs.removeMember("o1", "u2"), false);
      assert.equal(await orgs.delete("o1"), true);
      assert.equal(await orgs.delete("o1"), false);
      assert.equal(await orgs.memberRole("o1", "u1"), undefined, "memberships go with the organization");
    });
  });
}
