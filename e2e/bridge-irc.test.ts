import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { signature } from "@mottainai/bridge";
import { NamespaceService, Role, TaskService, TokenService, UserService, Visibility } from "@mottainai/proto";
import {
  adminClient,
  cleanupAll,
  cli,
  startCluster,
  startServer,
  tempDir,
  tokenClient,
  waitFor,
  type Cluster,
} from "./harness.js";
import { ircReader, ngircdReady, startBridgeDaemon, startNgircd, stopChildren, type IrcReader } from "./bridge-harness.js";

/** A local HTTP receiver answering with the statuses given in turn (then 200), recording requests. */
async function receiver(statuses: number[] = []) {
  const requests: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (d: Buffer) => parts.push(d));
    req.on("end", () => {
      requests.push({ headers: req.headers, body: Buffer.concat(parts).toString() });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { requests, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, close: () => server.close() };
}

/** End to end: server, agent, CLI and mottainai-bridge processes, with Debian's ngircd. */
describe("mottainai-bridge daemon (server + agent + CLI + bridge processes)", function () {
  this.timeout(180_000);
  let cluster: Cluster;
  const bridgeDir = () => tempDir("bridge");

  before(async () => {
    cluster = await startCluster("bridge-agent");
  });
  after(async () => {
    await stopChildren();
    await cleanupAll();
  });

  const config = (dir: string, notifiers: string, routes: string, token = cluster.server.adminToken, filter = "{}") =>
    [
      `servers: [${cluster.server.url}]`,
      `token: ${token}`,
      `filter: ${filter}`,
      `cursor: ${join(dir, "cursor.json")}`,
      "web_url: http://ci.example",
      "notifiers:",
      notifiers,
      "routes:",
      routes,
    ].join("\n");

  describe("IRC notifier against ngircd", function () {
    let irc: { port: number } | undefined;
    let reader: IrcReader;

    before(async function () {
      if (!ngircdReady()) return this.skip();
      irc = await startNgircd();
      reader = await ircReader(irc.port, "reader", "#builds");
    });
    after(() => reader?.close());

    const ircNotifier = (flood: number) =>
      [
        "  irc:",
        "    type: irc",
        "    host: 127.0.0.1",
        `    port: ${irc!.port}`,
        "    nick: mottainai",
        '    channel: "#builds"',
        `    flood_interval_ms: ${flood}`,
      ].join("\n");

    it("posts a task created through the CLI as IRC lines, in order", async () => {
      const dir = bridgeDir();
      const bridge = startBridgeDaemon(config(dir, ircNotifier(0), "  - filter: { types: [task.] }\n    notify: [irc]"), dir);
      await waitFor(
        () => bridge.output.some((l) => l.includes("joined the IRC channel")),
        20_000,
        () => bridge.output.join("\n"),
      );
      const r = await cli(
        ["task", "create", "-f", cluster.file("hello.yaml", "name: hello\ntype: host\nscript:\n  - echo hi\n")],
        cluster.env,
      );
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.toString().trim();
      await waitFor(
        () => reader.lines.some((l) => l.includes("finished")),
        30_000,
        () => reader.lines.join("\n") + bridge.output.join("\n"),
      );
      const mine = reader.lines.filter((l) => l.includes(id));
      assert.deepEqual(mine.slice(0, 3), [
        `task ${id} hello created http://ci.example/tasks/${id}`,
        `task ${id} hello assigned http://ci.example/tasks/${id}`,
        `task ${id} hello running http://ci.example/tasks/${id}`,
      ]);
      assert.match(mine[3]!, new RegExp(`^task ${id} hello finished: success \\(\\d+ s\\) http://ci\\.example/tasks/${id}$`));
      assert.equal(mine.length, 4);
      await bridge.kill();
      reader.lines.length = 0;
    });

    it("loses and repeats nothing when the bridge is killed with SIGKILL mid-stream and restarted", async () => {
      const dir = bridgeDir();
      const yaml = config(
        dir,
        `${ircNotifier(200)}\n    template: "{type} {subject}{attrs} #{sequence}"`,
        "  - filter: { types: [token.created] }\n    notify: [irc]",
      );
      const tokens = adminClient(cluster.server, TokenService);
      // Start after every existing event: the first run begins at 0 and replays everything kept.
      let bridge = startBridgeDaemon(yaml, dir);
      const names = Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(2, "0")}`);
      await waitFor(
        () => bridge.output.some((l) => l.includes("joined the IRC channel")),
        20_000,
        () => bridge.output.join("\n"),
      );
      for (const name of names) await tokens.createToken({ name });
      await waitFor(
        () => reader.lines.filter((l) => / name=k\d\d/.test(l)).length >= 8,
        30_000,
        () => reader.lines.join("\n"),
      );
      // Kill between two lines (flood interval 200 ms), once the last line's cursor is saved:
      // killed after the line but before the save, the bridge would post it again
      // (at-least-once, documented); that window is the fsync of the cursor file.
      await waitFor(
        () => {
          const last = / #(\d+)$/.exec(reader.lines[reader.lines.length - 1] ?? "")?.[1];
          return last !== undefined && readFileSafe(join(dir, "cursor.json")).includes(`"${last}"`);
        },
        10_000,
        () => readFileSafe(join(dir, "cursor.json")),
      );
      await bridge.kill("SIGKILL");
      const before = reader.lines.length;
      bridge = startBridgeDaemon(yaml, dir);
      await waitFor(
        () => reader.lines.some((l) => l.includes("name=k29")),
        60_000,
        () => reader.lines.join("\n") + bridge.output.join("\n"),
      );
      await bridge.kill();
      const seen = reader.lines.map((l) => / name=(k\d\d)/.exec(l)?.[1]).filter((n) => n !== undefined);
      assert.deepEqual(seen, names, `restarted after ${before} lines`);
    });
  });

  describe("webhook notifier against a local HTTP receiver", () => {
    it("signs the JSON body, retries on 500 and writes a dead letter after the last attempt", async () => {
      const ok = await receiver([500, 500]);
      const dead = await receiver([500, 500, 500, 500]);
      const dir = bridgeDir();
      const letters = join(dir, "dead.jsonl");
      const yaml = config(
        dir,
        [
          "  hook:",
          "    type: webhook",
          `    url: ${ok.url}`,
          "    secret: s3cret",
          "    attempts: 3",
          "    backoff_ms: 20",
          "  broken:",
          "    type: webhook",
          `    url: ${dead.url}`,
          "    attempts: 2",
          "    backoff_ms: 20",
          `    dead_letter: ${letters}`,
        ].join("\n"),
        "  - filter: { types: [token.created] }\n    notify: [hook, broken]",
      );
      const tokens = adminClient(cluster.server, TokenService);
      const { token } = await tokens.createToken({ name: "hooked" });
      const bridge = startBridgeDaemon(yaml.replace("filter: {}", `filter: { subject_ids: [${token!.id}] }`), dir);
      await waitFor(
        () => ok.requests.some((r) => r.body.includes(token!.id)) && readFileSafe(letters).includes(token!.id),
        30_000,
        () => bridge.output.join("\n"),
      );
      await bridge.kill();
      const mine = ok.requests.filter((r) => r.body.includes(token!.id));
      assert.equal(mine.length, 3, "two 500s, then 200");
      for (const r of mine) {
        assert.equal(r.headers["x-mottainai-signature"], signature("s3cret", r.body));
        assert.equal(r.headers["x-mottainai-event"], "token.created");
      }
      const body = JSON.parse(mine[2]!.body) as {
        event: { type: string; subjectId: string; attributes: Record<string, string> };
        text: string;
      };
      assert.equal(body.event.type, "token.created");
      assert.equal(body.event.subjectId, token!.id);
      assert.equal(body.event.attributes.name, "hooked");
      assert.ok(!mine[2]!.body.includes("mtk_"), "no secret in the event");
      assert.equal(dead.requests.filter((r) => r.body.includes(token!.id)).length, 2);
      const letter = readFileSafe(letters)
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { notifier: string; attempts: number; error: string; body: string })
        .find((l) => l.body.includes(token!.id))!;
      assert.deepEqual([letter.notifier, letter.attempts, letter.error], ["broken", 2, "HTTP 500"]);
      ok.close();
      dead.close();
    });
  });

  describe("server restarts", () => {
    it("reconnects after the server is killed with SIGKILL and resumes without loss or repeats", async () => {
      const hook = await receiver();
      const dir = bridgeDir();
      const bridge = startBridgeDaemon(
        config(
          dir,
          `  hook:\n    type: webhook\n    url: ${hook.url}`,
          "  - filter: { types: [token.created] }\n    notify: [hook]",
        ),
        dir,
      );
      const tokens = () => adminClient(cluster.server, TokenService);
      await tokens().createToken({ name: "r-before" });
      const seen = () =>
        hook.requests.map(
          (q) => (JSON.parse(q.body) as { event: { sequence: string; attributes: Record<string, string> } }).event,
        );
      await waitFor(
        () => seen().some((e) => e.attributes.name === "r-before"),
        20_000,
        () => bridge.output.join("\n"),
      );
      cluster.server.child.kill("SIGKILL");
      await cluster.server.exited;
      cluster.server = await startServer({ dataDir: cluster.server.dataDir, port: cluster.server.port });
      await tokens().createToken({ name: "r-after" });
      await waitFor(
        () => seen().some((e) => e.attributes.name === "r-after"),
        30_000,
        () => bridge.output.join("\n"),
      );
      await bridge.kill();
      hook.close();
      const sequences = seen().map((e) => Number(e.sequence));
      assert.deepEqual(
        sequences,
        [...new Set(sequences)].sort((a, b) => a - b),
        "in order, none twice",
      );
    });
  });

  describe("read rights", () => {
    it("user B's bridge receives none of user A's private events", async () => {
      const users = adminClient(cluster.server, UserService);
      const tokens = adminClient(cluster.server, TokenService);
      const ids: Record<string, string> = {};
      const secrets: Record<string, string> = {};
      for (const name of ["usera", "userb"]) {
        const { user } = await users.createUser({ name, role: Role.USER });
        ids[name] = user!.id;
        secrets[name] = (await tokens.createToken({ name: `${name}-token`, userId: user!.id })).secret;
      }
      const hook = await receiver();
      const dir = bridgeDir();
      const bridge = startBridgeDaemon(
        config(dir, `  hook:\n    type: webhook\n    url: ${hook.url}`, "  - notify: [hook]", secrets.userb),
        dir,
      );
      const envA = { ...cluster.env, MOTTAINAI_TOKEN: secrets.usera! };
      const r = await cli(
        ["task", "create", "-f", cluster.file("a.yaml", "name: private-a\ntype: host\nscript:\n  - echo a\n")],
        envA,
      );
      assert.equal(r.code, 0, r.stderr);
      const taskA = r.stdout.toString().trim();
      await tokenClient(cluster.server.url, secrets.usera!, NamespaceService).createNamespace({
        name: "a-private",
        visibility: Visibility.PRIVATE,
      });
      await waitFor(
        async () => (await adminClient(cluster.server, TaskService).getTask({ id: taskA })).task?.endTime,
        30_000,
        () => "task A did not finish",
      );
      const { token: marker } = await tokenClient(cluster.server.url, secrets.userb!, TokenService).createToken({
        name: "b-marker",
      });
      await waitFor(
        () => hook.requests.some((q) => q.body.includes(marker!.id)),
        20_000,
        () => bridge.output.join("\n"),
      );
      await bridge.kill();
      hook.close();
      const received = hook.requests.map((q) => (JSON.parse(q.body) as { event: { type: string; subjectId: string } }).event);
      assert.ok(
        received.every((e) => e.subjectId !== taskA && e.subjectId !== "a-private"),
        JSON.stringify(received),
      );
      assert.deepEqual(
        received.map((e) => e.type),
        ["token.created", "token.created"],
        "B sees its own token events only (the one the admin made for B, and the marker)",
      );
    });
  });
});

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
