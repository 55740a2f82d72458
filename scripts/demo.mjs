#!/usr/bin/env node
// Quickstart: starts mottainai-server and a local mottainai-agent on the embedded defaults
// (SQLite and a local directory under .mottainai/demo), runs examples/hello.yaml and shows its
// log, then keeps both running until Ctrl-C. With --once (`npm run demo -- --once`, what CI runs
// on a fresh clone) it stops both after the task and exits 0 only if the task ended done/success.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { NodeService, TaskResult, TaskService, TaskStatus } from "@mottainai/proto";

const once = process.argv.slice(2).includes("--once");
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const listen = process.env.MOTTAINAI_LISTEN ?? "127.0.0.1:9090";
const url = `http://${listen}`;
const serverDir = join(root, ".mottainai/demo/server");
const agentDir = join(root, ".mottainai/demo/agent");
const children = [];

function start(name, args) {
  // Own process group: a terminal's Ctrl-C reaches only this script, which stops them in order.
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  children.push(child);
  child.on("exit", (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited (${code ?? signal}); see its log lines above`);
      shutdown(1);
    }
  });
  return child;
}

let stopping = false;
async function shutdown(code) {
  stopping = true;
  for (const child of children.reverse()) child.kill("SIGTERM");
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once("exit", r)))));
  process.exit(code);
}
process.on("SIGINT", () => shutdown(0));
process.on("SIGTERM", () => shutdown(0));

const server = start("mottainai-server", [
  join(root, "server/dist/main.js"),
  "--listen",
  listen,
  "--data-dir",
  serverDir,
  "--log-level",
  "warn",
]);
server.stderr.pipe(process.stderr);
await new Promise((resolve) => {
  createInterface({ input: server.stdout }).on("line", (line) => {
    console.log(line);
    if (line.startsWith("mottainai-server listening on ")) resolve();
  });
});
const adminToken = readFileSync(join(serverDir, "admin-token"), "utf8").trim();
const auth = (next) => (req) => (req.header.set("authorization", `Bearer ${adminToken}`), next(req));
const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [auth] });
const nodes = createClient(NodeService, transport);

const agentArgs = [
  join(root, "agent/dist/main.js"),
  "--server",
  url,
  "--name",
  "local",
  "--state-dir",
  agentDir,
  "--log-level",
  "warn",
];
if (!existsSync(join(agentDir, "credential.json"))) {
  const { secret } = await nodes.createRegistrationToken({ description: "quickstart agent" });
  agentArgs.push("--registration-token", secret);
}
const agent = start("mottainai-agent", agentArgs);
agent.stderr.pipe(process.stderr);
for (;;) {
  const { nodes: list } = await nodes.listNodes({});
  if (list.some((n) => n.name === "local" && n.state === 1)) break;
  await new Promise((r) => setTimeout(r, 100));
}

const cliMain = join(root, "cli/dist/main.js");
const cliEnv = { ...process.env, MOTTAINAI_SERVER: url, MOTTAINAI_TOKEN: adminToken };
const run = (args, stdio) =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [cliMain, ...args], { env: cliEnv, stdio });
    let out = "";
    child.stdout?.on("data", (d) => (out += d));
    child.on("exit", (code) => resolve({ code, out }));
  });

console.log(`\nmottainai-server on ${url}, agent "local" connected. Running examples/hello.yaml:\n`);
console.log(`Dashboard: ${url}/ (sign in with the admin token in ${join(serverDir, "admin-token")})\n`);
const created = await run(["task", "create", "-f", join(root, "examples/hello.yaml")], ["ignore", "pipe", "inherit"]);
const id = created.out.trim();
if (created.code !== 0) await shutdown(1);
await run(["task", "log", id, "--follow"], ["ignore", "inherit", "inherit"]);
console.log("");
await run(["task", "show", id], ["ignore", "inherit", "inherit"]);
if (once) {
  const { task } = await createClient(TaskService, transport).getTask({ id });
  const ok = task?.status === TaskStatus.DONE && task.result === TaskResult.SUCCESS;
  console.log(`\ndemo --once: task ${id} ended ${TaskStatus[task?.status ?? 0]}/${TaskResult[task?.result ?? 0]}`);
  await shutdown(ok ? 0 : 1);
}
console.log(`
Server and agent keep running until Ctrl-C. Open the dashboard at ${url}/ and sign in with the
token in ${join(serverDir, "admin-token")}. Point the CLI at them with:

  alias mottainai="node ${cliMain}"
  mottainai profile create demo --server ${url} --token "$(cat ${join(serverDir, "admin-token")})" --use
  mottainai task create -f examples/hello.yaml
  mottainai task list
`);
