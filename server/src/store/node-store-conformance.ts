import assert from "node:assert/strict";
import { freshStore, type StoreFactory } from "./conformance-harness.js";
import type { NodeRecord, RegistrationTokenRecord } from "./node-store.js";

/** A node as registration creates it: never connected. */
export function testNode(id: string, name: string, credentialHash = `cred-${id}`): NodeRecord {
  return {
    id,
    name,
    hostname: `${name}.example`,
    credentialHash,
    draining: false,
    labels: {},
    queues: [],
    executors: [],
    capacity: 0,
    agentVersion: "",
    createTime: 10,
    connectTime: 0,
    lastHeartbeatTime: 0,
  };
}

const token = (id: string, createTime: number): RegistrationTokenRecord => ({
  id,
  description: `token ${id}`,
  hash: `hash-${id}`,
  createTime,
  expireTime: 0,
  revoked: false,
});

/** NodeStore behaviour every backend shares: registration by name, connections, heartbeats, tokens. */
export function nodeStoreConformance(factory: StoreFactory): void {
  describe("NodeStore", () => {
    const s = freshStore(factory);

    it("creates a node by name and re-registration replaces only its credential and hostname", async () => {
      const created = await s.store.nodes.upsertByName({
        ...testNode("n1", "alpha"),
        labels: { "topology.kubernetes.io/zone": "a", $x: "y" },
        queues: [{ queue: "general", slots: 2 }],
        executors: ["host"],
        capacity: 2,
        agentVersion: "1.0",
        draining: true,
      });
      assert.equal(created.id, "n1");
      assert.deepEqual(await s.store.nodes.get("n1"), created);
      assert.deepEqual(created.labels, { "topology.kubernetes.io/zone": "a", $x: "y" });
      const again = await s.store.nodes.upsertByName({ ...testNode("n2", "alpha", "cred-new"), hostname: "moved" });
      assert.deepEqual(again, { ...created, hostname: "moved", credentialHash: "cred-new" });
      assert.equal(await s.store.nodes.get("n2"), undefined);
      assert.equal((await s.store.nodes.getByCredentialHash("cred-new"))?.id, "n1");
      assert.equal(await s.store.nodes.getByCredentialHash("cred-n1"), undefined);
      assert.equal((await s.store.nodes.getByName("alpha"))?.id, "n1");
      assert.equal(await s.store.nodes.getByName("beta"), undefined);
    });

    it("lists nodes by name", async () => {
      for (const [id, name] of [
        ["1", "charlie"],
        ["2", "alpha"],
        ["3", "bravo"],
      ] as const) {
        await s.store.nodes.upsertByName(testNode(id, name));
      }
      assert.deepEqual(
        (await s.store.nodes.list()).map((n) => n.name),
        ["alpha", "bravo", "charlie"],
      );
    });

    it("records what an agent reports on connect, and heartbeats of many nodes at once", async () => {
      await s.store.nodes.upsertByName(testNode("n1", "alpha"));
      await s.store.nodes.upsertByName(testNode("n2", "bravo"));
      await s.store.nodes.updateConnection("n1", {
        hostname: "alpha-host",
        labels: { arch: "amd64", "a.b": "c" },
        queues: [
          { queue: "general", slots: 4 },
          { queue: "gpu", slots: 1 },
        ],
        executors: ["docker", "host"],
        capacity: 5,
        agentVersion: "2.0",
        connectTime: 100,
      });
      const n1 = await s.store.nodes.get("n1");
      assert.deepEqual(n1, {
        ...testNode("n1", "alpha"),
        hostname: "alpha-host",
        labels: { arch: "amd64", "a.b": "c" },
        queues: [
          { queue: "general", slots: 4 },
          { queue: "gpu", slots: 1 },
        ],
        executors: ["docker", "host"],
        capacity: 5,
        agentVersion: "2.0",
        connectTime: 100,
        lastHeartbeatTime: 100,
      });
      await s.store.nodes.setHeartbeats(
        new Map([
          ["n1", 150],
          ["n2", 160],
          ["gone", 170],
        ]),
      );
      await s.store.nodes.setHeartbeats(new Map());
      assert.equal((await s.store.nodes.get("n1"))?.lastHeartbeatTime, 150);
      assert.equal((await s.store.nodes.get("n2"))?.lastHeartbeatTime, 160);
      assert.equal(await s.store.nodes.get("gone"), undefined);
    });

    it("drains and deletes nodes, reporting whether the node existed", async () => {
      await s.store.nodes.upsertByName(testNode("n1", "alpha"));
      assert.equal(await s.store.nodes.setDraining("n1", true), true);
      assert.equal((await s.store.nodes.get("n1"))?.draining, true);
      assert.equal(await s.store.nodes.setDraining("n1", true), true, "unchanged still counts");
      assert.equal(await s.store.nodes.setDraining("n1", false), true);
      assert.equal((await s.store.nodes.get("n1"))?.draining, false);
      assert.equal(await s.store.nodes.setDraining("nope", true), false);
      assert.equal(await s.store.nodes.delete("n1"), true);
      assert.equal(await s.store.nodes.delete("n1"), false);
      assert.deepEqual(await s.store.nodes.list(), []);
    });

    it("refuses a credential hash another node already has", async () => {
      await s.store.nodes.upsertByName(testNode("n1", "alpha", "same"));
      await assert.rejects(s.store.nodes.upsertByName(testNode("n2", "bravo", "same")));
    });

    it("keeps registration tokens by hash, oldest first, and revokes them", async () => {
      await s.store.nodes.createRegistrationToken(token("t2", 20));
      await s.store.nodes.createRegistrationToken({ ...token("t1", 10), expireTime: 99 });
      assert.deepEqual(await s.store.nodes.getRegistrationTokenByHash("hash-t1"), { ...token("t1", 10), expireTime: 99 });
      assert.equal(await s.store.nodes.getRegistrationTokenByHash("nope"), undefined);
      assert.deepEqual(
        (await s.store.nodes.listRegistrationTokens()).map((t) => t.id),
        ["t1", "t2"],
      );
      assert.equal(await s.store.nodes.revokeRegistrationToken("t2"), true);
      assert.equal((await s.store.nodes.getRegistrationTokenByHash("hash-t2"))?.revoked, true);
      assert.equal(await s.store.nodes.revokeRegistrationToken("nope"), false);
      await assert.rejects(s.store.nodes.createRegistrationToken({ ...token("t3", 30), hash: "hash-t1" }));
    });
  });
}
