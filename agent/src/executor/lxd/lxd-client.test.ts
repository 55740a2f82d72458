import { create } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createLxdClient, LxdError, type LxdEndpoint } from "./lxd-client.js";
import { createLxdExecutor, lxdContainerPrefix } from "./lxd-executor.js";
import { lxdInstancesWithPrefix, requireLxdRemote, TEST_LXD_IMAGE, TEST_LXD_URL } from "./require-lxd.js";

describe("lxd client over https with a client certificate (real LXD)", function () {
  let endpoint: LxdEndpoint;
  const name = `mottainai-tls-${process.pid}`;

  before(async function () {
    const e = await requireLxdRemote(Boolean(process.env.CI));
    if (!e) this.skip();
    endpoint = e;
  });

  it("makes requests, waits for operations and execs with stdin and stdout over wss", async () => {
    const client = createLxdClient(endpoint);
    assert.equal(client.endpoint, TEST_LXD_URL);
    try {
      await client.operation("POST", "/1.0/instances", {
        name,
        type: "container",
        source: { type: "image", alias: TEST_LXD_IMAGE },
      });
      await client.operation("PUT", `/1.0/instances/${name}/state`, { action: "start" });
      const out: Buffer[] = [];
      const exec = await client.exec(name, {
        command: ["/bin/sh", "-c", "exec 2>&1; echo over tls; cat; echo err >&2; exit 4"],
        environment: {},
        stdin: (async function* () {
          yield Buffer.from("from stdin\n");
        })(),
        onStdout: (chunk) => out.push(chunk),
      });
      assert.equal(await exec.done, 4);
      assert.equal(Buffer.concat(out).toString(), "over tls\nfrom stdin\nerr\n");
    } finally {
      await client.operation("PUT", `/1.0/instances/${name}/state`, { action: "stop", force: true }).catch(() => undefined);
      await client.operation("DELETE", `/1.0/instances/${name}`).catch(() => undefined);
    }
    await assert.rejects(client.request("GET", `/1.0/instances/${name}`), (err: LxdError) => {
      assert.equal(err.status, 404);
      return true;
    });
  });

  it("runs an lxd task on the remote LXD", async () => {
    const root = mkdtempSync(join(tmpdir(), "mottainai-lxd-tls-"));
    const chunks: Buffer[] = [];
    const e = createLxdExecutor(
      {
        taskId: `tls-${process.pid}`,
        attempt: 1,
        spec: create(TaskSpecSchema, { type: "lxd", image: TEST_LXD_IMAGE, script: ["echo remote", "exit 2"] }),
        environment: {},
        workspaceRoot: join(root, "work"),
        onOutput: (c) => chunks.push(Buffer.from(c)),
        logger: pino({ level: "silent" }),
      },
      { endpoint, agentLabel: `tls-${process.pid}` },
    );
    try {
      await e.prepare();
      await e.start();
      assert.deepEqual(await e.wait(), { exitCode: 2 });
      assert.equal(Buffer.concat(chunks).toString(), "remote\n");
    } finally {
      await e.destroy();
      rmSync(root, { recursive: true, force: true });
    }
    assert.deepEqual(await lxdInstancesWithPrefix(createLxdClient(endpoint), lxdContainerPrefix(`tls-${process.pid}`)), []);
  });
});

describe("lxd client errors", () => {
  it("names the socket when LXD does not answer", async () => {
    await assert.rejects(createLxdClient({ socketPath: "/nonexistent/lxd.socket" }).request("GET", "/1.0"), {
      message: "lxd at unix:///nonexistent/lxd.socket: connect ENOENT /nonexistent/lxd.socket",
    });
  });

  it("refuses a remote that is not https", () => {
    assert.throws(() => createLxdClient({ url: "http://127.0.0.1:8443" }), {
      message: 'lxd: a remote LXD is reached over https://, got "http://127.0.0.1:8443"',
    });
  });
});
