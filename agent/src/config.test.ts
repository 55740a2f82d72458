import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadAgentConfig, type AgentConfig } from "./config.js";

describe("loadAgentConfig", () => {
  let dir: string;
  const defaults = () => ({ hostname: "builder-1", cwd: dir });
  const load = (argv: string[], env: Record<string, string | undefined> = {}): AgentConfig =>
    loadAgentConfig(argv, env, defaults());
  const fails = (argv: string[], message: string | RegExp, env: Record<string, string | undefined> = {}) =>
    assert.throws(
      () => load(argv, env),
      (err: Error) => {
        assert.ok(err instanceof ConfigError, String(err));
        if (typeof message === "string") assert.equal(err.message, message);
        else assert.match(err.message, message);
        return true;
      },
    );
  const file = (text: string): string => {
    const path = join(dir, "agent.yaml");
    writeFileSync(path, text);
    return path;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mottainai-agent-config-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("has defaults", () => {
    assert.deepEqual(load([]), {
      server: "http://127.0.0.1:9090",
      registrationToken: undefined,
      name: "builder-1",
      stateDir: join(dir, ".mottainai/agent"),
      queues: [{ queue: "general", slots: 2 }],
      capacity: 2,
      labels: {},
      executors: ["host"],
      logLevel: "info",
    });
  });

  it("reads every flag, repeatable ones included", () => {
    const c = load([
      "--server",
      "https://ci.example.org:8443",
      "--registration-token",
      "reg-123",
      "--name",
      "node-7",
      "--state-dir",
      "state",
      "--capacity",
      "4",
      "--queue",
      "general:2",
      "--queue",
      "heavy:1",
      "--queue",
      "light",
      "--label",
      "arch=amd64",
      "--label",
      "gpu=yes=really",
      "--executor",
      "host",
      "--executor",
      "fake",
      "--log-level",
      "debug",
    ]);
    assert.deepEqual(c, {
      server: "https://ci.example.org:8443",
      registrationToken: "reg-123",
      name: "node-7",
      stateDir: join(dir, "state"),
      queues: [
        { queue: "general", slots: 2 },
        { queue: "heavy", slots: 1 },
        { queue: "light", slots: 4 },
      ],
      capacity: 4,
      labels: { arch: "amd64", gpu: "yes=really" },
      executors: ["host", "fake"],
      logLevel: "debug",
    });
  });

  it("defaults the queue's slots to the capacity", () => {
    assert.deepEqual(load(["--capacity", "5"]).queues, [{ queue: "general", slots: 5 }]);
  });

  it("reads the environment", () => {
    const c = load([], {
      MOTTAINAI_AGENT_SERVER: "http://10.0.0.1:9090",
      MOTTAINAI_AGENT_REGISTRATION_TOKEN: "t",
      MOTTAINAI_AGENT_NAME: "env-node",
      MOTTAINAI_AGENT_STATE_DIR: "/var/lib/mottainai",
      MOTTAINAI_AGENT_CAPACITY: "3",
      MOTTAINAI_AGENT_LOG_LEVEL: "warn",
    });
    assert.equal(c.server, "http://10.0.0.1:9090");
    assert.equal(c.registrationToken, "t");
    assert.equal(c.name, "env-node");
    assert.equal(c.stateDir, "/var/lib/mottainai");
    assert.equal(c.capacity, 3);
    assert.equal(c.logLevel, "warn");
  });

  it("reads a YAML file with snake_case keys, lists and mappings", () => {
    const path = file(
      [
        "server: http://file:9090",
        "registration_token: from-file",
        "name: file-node",
        "state_dir: st",
        "capacity: 6",
        "queues:",
        "  general: 4",
        "  docker: 2",
        "labels:",
        "  arch: arm64",
        "executor: [host, fake]",
        "log_level: error",
        "",
      ].join("\n"),
    );
    const c = load(["--config", path]);
    assert.deepEqual(c, {
      server: "http://file:9090",
      registrationToken: "from-file",
      name: "file-node",
      stateDir: join(dir, "st"),
      queues: [
        { queue: "general", slots: 4 },
        { queue: "docker", slots: 2 },
      ],
      capacity: 6,
      labels: { arch: "arm64" },
      executors: ["host", "fake"],
      logLevel: "error",
    });
    assert.deepEqual(load([], { MOTTAINAI_AGENT_CONFIG: path }).queues, c.queues);
    assert.deepEqual(load(["--config", file('queue: ["a:1", b]\nlabel: ["x=1"]\n')]).queues, [
      { queue: "a", slots: 1 },
      { queue: "b", slots: 2 },
    ]);
  });

  it("applies flags over environment over file over defaults", () => {
    const path = file("server: http://file:1\nname: file-node\ncapacity: 6\nlog_level: error\nlabel:\n  a: file\n");
    const env = { MOTTAINAI_AGENT_SERVER: "http://env:2", MOTTAINAI_AGENT_CAPACITY: "3" };
    const c = load(["--config", path, "--capacity", "9", "--label", "b=flag"], env);
    assert.equal(c.server, "http://env:2");
    assert.equal(c.capacity, 9);
    assert.equal(c.name, "file-node");
    assert.equal(c.logLevel, "error");
    assert.deepEqual(c.labels, { b: "flag" }, "a list from a higher source replaces the lower one");
    assert.equal(
      load(["--config", path], { MOTTAINAI_AGENT_SERVER: "" }).server,
      "http://file:1",
      "an empty variable counts as unset",
    );
  });

  it("names the flag, variable or key of a bad value", () => {
    fails(["--capacity", "x"], '--capacity: expected a positive integer, got "x"');
    fails(["--capacity", "0"], '--capacity: expected a positive integer, got "0"');
    fails([], 'MOTTAINAI_AGENT_CAPACITY: expected a positive integer, got "-1"', { MOTTAINAI_AGENT_CAPACITY: "-1" });
    fails(["--server", "ftp://x"], /^--server: expected an http:\/\/ or https:\/\/ URL/);
    fails(["--server", "not a url"], /^--server: /);
    fails(["--queue", "general:0"], /^--queue: expected NAME:SLOTS/);
    fails(["--queue", "a:1", "--queue", "a:2"], '--queue: queue "a" is given twice');
    fails(["--label", "novalue"], '--label: expected KEY=VALUE, got "novalue"');
    fails(["--executor", "podman"], '--executor: unknown executor "podman" (this agent has: host, fake, docker)');
    fails(
      ["--docker-host", "docker.example:2375"],
      /^--docker-host: expected unix:\/\/\/path\/to\/docker.sock or tcp:\/\/host:port/,
    );
    fails(["--log-level", "loud"], /^--log-level: expected one of fatal, error/);
    fails(["--name", "has space"], /^--name: /);
    fails(["--bogus"], /bogus/);
    fails(["positional"], /positional/);
    const path = file("capacity: lots\n");
    fails(["--config", path], `${path}: capacity: expected a positive integer, got "lots"`);
  });

  it("offers the docker executor only when asked, with its endpoint", () => {
    assert.deepEqual(load([], {}).executors, ["host"]);
    assert.equal(load([], {}).dockerHost, undefined);
    const c = load(["--executor", "host", "--executor", "docker", "--docker-host", "tcp://127.0.0.1:2375"], {});
    assert.deepEqual(c.executors, ["host", "docker"]);
    assert.equal(c.dockerHost, "tcp://127.0.0.1:2375");
    assert.equal(load([], { MOTTAINAI_AGENT_DOCKER_HOST: "unix:///run/docker.sock" }).dockerHost, "unix:///run/docker.sock");
    assert.equal(load(["--config", file("executors: [docker]\ndocker_host: unix:///x.sock\n")], {}).dockerHost, "unix:///x.sock");
  });

  it("rejects unknown keys, bad YAML and missing files", () => {
    fails(["--config", file("capcity: 2\n")], /unknown setting "capcity"/);
    fails(["--config", file("server: [1\n")], /agent\.yaml: /);
    fails(["--config", file("- a\n")], /expected a mapping of settings/);
    fails(["--config", file("queue: general:1\nqueues: [b]\n")], /"queue" and "queues" are the same setting/);
    fails(["--config", file("server:\n  a: 1\n")], /server: expected a single value, got a mapping/);
    fails(["--config", join(dir, "missing.yaml")], /^--config: cannot read .*missing\.yaml: ENOENT/);
  });
});
