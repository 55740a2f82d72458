import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { TokenService } from "@mottainai/proto";
import { adminClient, cleanupAll, cli, ROOT, startCluster, startServer, tempDir, waitFor, type Cluster } from "./harness.js";

const PYTHON = "/usr/bin/python3";
const EXAMPLE = join(ROOT, "examples/bridge-python");

/** Whether Debian's python3-grpcio, protoc and its gRPC plugin are there; CI must have them. */
function pythonReady(): boolean {
  let why = "";
  if (!existsSync("/usr/bin/protoc") || !existsSync("/usr/bin/grpc_python_plugin")) {
    why = "protoc or grpc_python_plugin is missing (apt-get install protobuf-compiler protobuf-compiler-grpc)";
  } else {
    try {
      execFileSync(PYTHON, ["-c", "import grpc"], { stdio: "ignore" });
    } catch {
      why = `${PYTHON} cannot import grpc (apt-get install python3-grpcio)`;
    }
  }
  if (!why) return true;
  if (process.env.CI) throw new Error(`Python bridge e2e cannot run in CI: ${why}`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "python3-grpcio", why);
  return false;
}

interface Line {
  sequence: number;
  type: string;
  subject: string;
  attributes: Record<string, string>;
}

/** examples/bridge-python against a real server, agent and CLI. */
describe("Python bridge example (python3-grpcio against a real server)", function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let stubs: string;

  before(async function () {
    if (!pythonReady()) return this.skip();
    stubs = tempDir("pystubs");
    execFileSync(join(EXAMPLE, "generate.sh"), [stubs], { stdio: "pipe" });
    cluster = await startCluster("python-agent");
  });
  after(cleanupAll);

  it("receives a task's events in order and resumes after the server is killed and restarted", async () => {
    const child = spawn(
      PYTHON,
      [join(EXAMPLE, "subscribe.py"), `127.0.0.1:${cluster.server.port}`, cluster.server.adminToken, "0", "task.", "token."],
      {
        env: { MOTTAINAI_PY_STUBS: stubs, PATH: process.env.PATH },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const lines: Line[] = [];
    const stderr: string[] = [];
    createInterface({ input: child.stdout }).on("line", (l) => lines.push(JSON.parse(l) as Line));
    createInterface({ input: child.stderr }).on("line", (l) => stderr.push(l));
    try {
      const r = await cli(
        ["task", "create", "-f", cluster.file("py.yaml", "name: py\ntype: host\nscript:\n  - echo py\n")],
        cluster.env,
      );
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.toString().trim();
      await waitFor(
        () => lines.some((l) => l.subject === id && l.type === "task.finished"),
        30_000,
        () => stderr.join("\n"),
      );
      assert.deepEqual(
        lines.filter((l) => l.subject === id).map((l) => l.type),
        ["task.created", "task.assigned", "task.running", "task.finished"],
      );
      assert.equal(lines.find((l) => l.type === "task.finished")!.attributes.result, "success");

      cluster.server.child.kill("SIGKILL");
      await cluster.server.exited;
      const server = await startServer({ dataDir: cluster.server.dataDir, port: cluster.server.port });
      await waitFor(
        () => stderr.some((l) => l.includes("reconnecting from")),
        20_000,
        () => stderr.join("\n"),
      );
      await adminClient(server, TokenService).createToken({ name: "after-restart" });
      await waitFor(
        () => lines.some((l) => l.attributes.name === "after-restart"),
        30_000,
        () => stderr.join("\n"),
      );
      const sequences = lines.map((l) => l.sequence);
      assert.deepEqual(
        sequences,
        [...new Set(sequences)].sort((a, b) => a - b),
        "in order, none twice",
      );
    } finally {
      child.kill();
    }
  });
});
