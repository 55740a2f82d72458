import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import {
  ArtefactService,
  NamespaceService,
  NodeService,
  NodeState,
  TaskResult,
  TaskService,
  TaskStatus,
  Visibility,
} from "@mottainai/proto";
import { MongoClient } from "mongodb";
import { pino } from "pino";
import { loadServerConfig } from "../config.js";
import { startServer, type MottainaiServer } from "../server.js";
import { type JongodbServer, requireJongodb } from "./jongodb-server.js";

const AGENT_MAIN = join(dirname(fileURLToPath(import.meta.url)), "../../../agent/dist/main.js");

async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what()} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The real server (startServer) on MongoDB with GridFS blobs, on jongodb, and a real agent
// process (host executor): a task runs to success, and its log, its artefacts and the namespace
// revision it publishes are all stored in MongoDB and read back through the API.
describe("a server on MongoDB and GridFS (jongodb)", function () {
  let jongodb: JongodbServer | undefined;
  let server: MottainaiServer | undefined;
  let agent: ChildProcess | undefined;
  const agentOutput: string[] = [];
  let dataDir: string;
  let storeUrl: string;
  let client: <T extends DescService>(service: T) => Client<T>;

  before(async function () {
    jongodb = await requireJongodb(Boolean(process.env.CI), process.env);
    if (!jongodb) return this.skip();
    dataDir = mkdtempSync(join(tmpdir(), "mottainai-mongo-server-"));
    // One connection per client: jongodb is not atomic across connections (docs/mongodb.md).
    storeUrl = `${jongodb.url}mottainai_server?maxPoolSize=1`;
    const config = loadServerConfig(
      ["--listen", "127.0.0.1:0", "--data-dir", dataDir, "--store", storeUrl, "--blobs", "gridfs", "--heartbeat-interval", "1s"],
      {},
    );
    server = await startServer(config, pino({ level: "silent" }));
    const transport = createGrpcTransport({
      baseUrl: `http://127.0.0.1:${server.port}`,
      interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${server!.adminToken}`), next(req))],
    });
    client = (service) => createClient(service, transport);
  });
  after(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise((resolve) => agent!.once("exit", resolve));
      agent.kill("SIGTERM");
      await exited;
    }
    await server?.close();
    await jongodb?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("runs a host task through a real agent: log, artefacts and a namespace publish on MongoDB", async () => {
    const nodes = client(NodeService);
    const { secret } = await nodes.createRegistrationToken({ description: "mongo-server test" });
    agent = spawn(
      process.execPath,
      [
        AGENT_MAIN,
        "--server",
        `http://127.0.0.1:${server!.port}`,
        "--registration-token",
        secret,
        "--name",
        "mongo-agent",
        "--state-dir",
        join(dataDir, "agent"),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    for (const stream of [agent.stdout!, agent.stderr!]) stream.on("data", (d: Buffer) => agentOutput.push(d.toString()));
    await waitFor(
      async () =>
        (await nodes.listNodes({})).nodes.some((n) => n.name === "mongo-agent" && n.state === NodeState.ONLINE)
          ? true
          : undefined,
      30_000,
      () => `the agent did not connect:\n${agentOutput.join("")}`,
    );

    await client(NamespaceService).createNamespace({ name: "repo", visibility: Visibility.PUBLIC });
    const tasks = client(TaskService);
    const { task: created } = await tasks.createTask({
      spec: {
        name: "on-mongo",
        type: "host",
        script: [
          "echo hello from mongo",
          "mkdir -p artefacts/pkg",
          "printf 'alpha' > artefacts/pkg/a.txt",
          "printf 'beta!' > artefacts/b.txt",
        ],
        tagNamespace: "repo",
      },
    });
    const id = created!.id;
    const task = await waitFor(
      async () => {
        const { task: t } = await tasks.getTask({ id });
        return t?.status === TaskStatus.DONE ? t : undefined;
      },
      60_000,
      () => `task ${id} did not finish:\n${agentOutput.join("")}`,
    );
    assert.equal(task.result, TaskResult.SUCCESS, task.error);

    let log = "";
    for await (const chunk of tasks.followTaskLog({ id, offset: 0n, follow: false })) log += Buffer.from(chunk.data).toString();
    assert.match(log, /hello from mongo/);

    const { artefacts } = await client(ArtefactService).listArtefacts({ taskId: id, prefix: "" });
    assert.deepEqual(
      artefacts.map((a) => [a.path, Number(a.size)]),
      [
        ["b.txt", 5],
        ["pkg/a.txt", 5],
      ],
    );
    const { files } = await client(NamespaceService).listFiles({ name: "repo", ref: "", prefix: "" });
    assert.deepEqual(
      files.map((f) => f.path),
      ["b.txt", "pkg/a.txt"],
    );
    const http = await fetch(`http://127.0.0.1:${server!.port}/namespaces/repo/pkg/a.txt`);
    assert.equal(await http.text(), "alpha", "namespace bytes served from GridFS");

    // Everything went to MongoDB: metadata documents and GridFS files, nothing in SQLite.
    const mongo = new MongoClient(storeUrl);
    try {
      const db = mongo.db("mottainai_server");
      assert.equal(await db.collection("tasks").countDocuments({ _id: id as never }), 1);
      assert.equal(await db.collection("artefacts").countDocuments({ taskId: id }), 2);
      assert.equal(await db.collection("namespace_revisions").countDocuments({ namespace: "repo", state: "committed" }), 1);
      const sha = artefacts.find((a) => a.path === "pkg/a.txt")!.sha256;
      assert.equal(await db.collection("blobs.files").countDocuments({ filename: sha }), 1);
    } finally {
      await mongo.close();
    }
  });
});
