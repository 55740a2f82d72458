import assert from "node:assert/strict";
import { BridgeConfigError, parseBridgeConfig } from "./bridge-config.js";

const base = [
  "servers: [http://127.0.0.1:9090]",
  "token: mtk_x",
  "cursor: /var/lib/mottainai-bridge/cursor.json",
  "notifiers:",
  "  irc:",
  "    type: irc",
  "    host: irc.example",
  '    channel: "#builds"',
  "  hook:",
  "    type: webhook",
  "    url: https://hooks.example/m",
  "    secret: s",
  "routes:",
  "  - filter: { types: [task.finished], namespace: repo }",
  "    notify: [irc, hook]",
].join("\n");

const error = (text: string): string => {
  try {
    parseBridgeConfig(text, () => "mtk_from_file\n");
  } catch (err) {
    assert.ok(err instanceof BridgeConfigError);
    return err.message;
  }
  assert.fail("no error");
};

describe("parseBridgeConfig", () => {
  it("reads servers, notifiers with their defaults and routes", () => {
    const c = parseBridgeConfig(base, () => "");
    assert.deepEqual(c.servers, ["http://127.0.0.1:9090"]);
    assert.equal(c.webUrl, "http://127.0.0.1:9090");
    assert.deepEqual(c.notifiers.get("irc"), {
      type: "irc",
      name: "irc",
      host: "irc.example",
      port: 6667,
      nick: "mottainai",
      channel: "#builds",
      floodIntervalMs: 1000,
      template: undefined,
    });
    assert.deepEqual(c.notifiers.get("hook"), {
      type: "webhook",
      name: "hook",
      url: "https://hooks.example/m",
      secret: "s",
      attempts: 5,
      backoffMs: 1000,
      deadLetter: "",
      timeoutMs: 10_000,
      template: undefined,
    });
    assert.deepEqual(c.routes, [
      {
        filter: { types: ["task.finished"], subjectIds: [], ownerId: "", namespace: "repo", pipelineId: "" },
        notify: ["irc", "hook"],
      },
    ]);
    assert.equal(parseBridgeConfig(base.replace("token: mtk_x", "token_file: /t"), () => "mtk_f\n").token, "mtk_f");
  });

  it("names the key of every mistake", () => {
    assert.equal(error(base.replace('    channel: "#builds"\n', "")), "notifiers.irc.channel: required (a string)");
    assert.equal(error(base.replace('"#builds"', "builds")), "notifiers.irc.channel: must start with # or &");
    assert.equal(
      error(base.replace("notify: [irc, hook]", "notify: [irc, mail]")),
      "routes[0].notify[1]: no notifier named mail",
    );
    assert.equal(
      error(base.replace("type: webhook", "type: mail")),
      'notifiers.hook.type: unknown notifier type "mail" (irc, webhook, slack, exec)',
    );
    assert.equal(
      error(base.replace("secret: s", "secret: s\n    retries: 3")),
      "notifiers.hook.retries: unknown key (known: type, url, secret, attempts, backoff_ms, dead_letter, timeout_ms, template)",
    );
    assert.equal(
      error(base.replace("http://127.0.0.1:9090", "127.0.0.1:9090")),
      "servers[0]: 127.0.0.1:9090 is not an http(s) URL",
    );
    assert.equal(error(base.replace("namespace: repo", "namespace: 3")), "routes[0].filter.namespace: required (a string)");
    assert.equal(error(base.replace("token: mtk_x\n", "")), "token: required (a string)");
    assert.equal(
      error(base.replace("routes:", "routs:")),
      "routs: unknown key (known: servers, token, token_file, cursor, web_url, filter, notifiers, routes)",
    );
    assert.equal(error("servers: [\n"), error("servers: [\n"));
    assert.match(error("servers: [\n"), /^not valid YAML: /);
  });
});
