import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { EventSchema } from "@mottainai/proto";
import pino from "pino";
import { createExecNotifier } from "./exec-notifier.js";
import { createHttpNotifier } from "./http-notifier.js";

const event = create(EventSchema, { sequence: 42n, type: "token.created", subjectId: "t1", attributes: { name: "ci" } });
const logger = pino({ level: "silent" });

describe("exec and Slack notifiers", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "mottainai-notifier-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("exec: runs the command with the event JSON on stdin and its facts in the environment", async () => {
    const out = join(dir, "out");
    const exec = createExecNotifier({
      name: "run",
      command: [
        "/bin/sh",
        "-c",
        `{ cat; echo "$MOTTAINAI_EVENT_TYPE $MOTTAINAI_EVENT_SEQUENCE $MOTTAINAI_EVENT_TEXT"; } > ${out}`,
      ],
      timeoutMs: 10_000,
      webUrl: "http://ci",
      env: { PATH: "/usr/bin:/bin" },
    });
    await exec.notify(event);
    const [json, facts] = readFileSync(out, "utf8").trim().split("\n");
    assert.deepEqual(JSON.parse(json!), { sequence: "42", type: "token.created", subjectId: "t1", attributes: { name: "ci" } });
    assert.equal(facts, "token.created 42 token.created t1 name=ci");
    const failing = createExecNotifier({
      name: "bad",
      command: ["/bin/sh", "-c", "echo nope >&2; exit 3"],
      timeoutMs: 10_000,
      webUrl: "",
      env: {},
    });
    await assert.rejects(failing.notify(event), { message: "bad: /bin/sh -c echo nope >&2; exit 3 ended with 3: nope" });
  });

  it("slack: posts {text} and retries until a 2xx", async () => {
    const bodies: string[] = [];
    const statuses = [503];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        bodies.push(body);
        res.writeHead(statuses.shift() ?? 200).end("ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const slack = createHttpNotifier({
        name: "chat",
        kind: "slack",
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        secret: "",
        attempts: 3,
        backoffMs: 5,
        deadLetter: "",
        timeoutMs: 5000,
        template: "{kind} {verb}: {attr.name}",
        webUrl: "",
        logger,
      });
      await slack.notify(event);
      assert.deepEqual(bodies, ['{"text":"token created: ci"}', '{"text":"token created: ci"}']);
    } finally {
      server.close();
    }
  });
});
