import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadAgentConfig, type AgentConfig } from "./config.js";
import { DEFAULT_DOCKER_POLICY } from "./executor/docker-policy.js";
import { DEFAULT_LXD_POLICY } from "./executor/lxd/lxd-policy.js";

const DEFAULT_LXD_CONFIG = {
  endpoint: { socketPath: "/var/lib/lxd/unix.socket" },
  remotes: {},
  policy: { ...DEFAULT_LXD_POLICY, bindAllow: [], profiles: ["default"] },
};

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
      servers: ["http://127.0.0.1:9090"],
      registrationToken: undefined,
      name: "builder-1",
      stateDir: join(dir, ".mottainai/agent"),
      queues: [{ queue: "general", slots: 2 }],
      capacity: 2,
      labels: {},
      executors: ["host"],
      logLevel: "info",
      dockerPolicy: { ...DEFAULT_DOCKER_POLICY },
      libvirt: { uri: "qemu:///system" },
      lxd: DEFAULT_LXD_CONFIG,
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
      servers: ["https://ci.example.org:8443"],
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
      dockerPolicy: { ...DEFAULT_DOCKER_POLICY },
      libvirt: { uri: "qemu:///system" },
      lxd: DEFAULT_LXD_CONFIG,
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
    assert.deepEqual(c.servers, ["http://10.0.0.1:9090"]);
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
      servers: ["http://file:9090"],
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
      dockerPolicy: { ...DEFAULT_DOCKER_POLICY },
      libvirt: { uri: "qemu:///system" },
      lxd: DEFAULT_LXD_CONFIG,
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
    assert.deepEqual(c.servers, ["http://env:2"]);
    assert.equal(c.capacity, 9);
    assert.equal(c.name, "file-node");
    assert.equal(c.logLevel, "error");
    assert.deepEqual(c.labels, { b: "flag" }, "a list from a higher source replaces the lower one");
    assert.deepEqual(
      load(["--config", path], { MOTTAINAI_AGENT_SERVER: "" }).servers,
      ["http://file:1"],
      "an empty variable counts as unset",
    );
  });

  it("takes a comma-separated list of servers", () => {
    assert.deepEqual(load(["--server", "http://a:1, http://b:2,https://c:3"]).servers, [
      "http://a:1",
      "http://b:2",
      "https://c:3",
    ]);
    assert.deepEqual(load([], { MOTTAINAI_AGENT_SERVER: "http://a:1,http://b:2" }).servers, ["http://a:1", "http://b:2"]);
    fails(
      ["--server", "http://a:1,ftp://b"],
      '--server: expected an http:// or https:// URL such as "http://127.0.0.1:9090", got "ftp://b"',
    );
    fails(["--server", ","], "--server: expected at least one server URL");
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
    fails(["--executor", "podman"], '--executor: unknown executor "podman" (this agent has: host, fake, docker, libvirt, lxd)');
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

  describe("docker policy", () => {
    it("defaults to unprivileged, network none, no binds, no limits", () => {
      assert.deepEqual(load([]).dockerPolicy, {
        privileged: false,
        capAdd: [],
        capDrop: [],
        networkMode: "none",
        bindAllow: [],
      });
    });

    it("reads every --docker-* flag, repeatable ones included", () => {
      const c = load([
        "--docker-privileged",
        "--docker-cap-add",
        "net_admin",
        "--docker-cap-add",
        "SYS_PTRACE",
        "--docker-cap-drop",
        "CHOWN",
        "--docker-network",
        "host",
        "--docker-bind-allow",
        "/srv/cache",
        "--docker-bind-allow",
        "/var/cache/distfiles",
        "--docker-default-cpus",
        "1",
        "--docker-max-cpus",
        "2.5",
        "--docker-default-memory",
        "512m",
        "--docker-max-memory",
        "2g",
      ]);
      assert.deepEqual(c.dockerPolicy, {
        privileged: true,
        capAdd: ["NET_ADMIN", "SYS_PTRACE"],
        capDrop: ["CHOWN"],
        networkMode: "host",
        bindAllow: ["/srv/cache", "/var/cache/distfiles"],
        defaultCpus: 1,
        maxCpus: 2.5,
        defaultMemory: 512 * 1024 ** 2,
        maxMemory: 2 * 1024 ** 3,
      });
    });

    it("reads MOTTAINAI_AGENT_DOCKER_* (lists comma-separated) and YAML keys", () => {
      const fromEnv = load([], {
        MOTTAINAI_AGENT_DOCKER_PRIVILEGED: "true",
        MOTTAINAI_AGENT_DOCKER_CAP_ADD: "NET_ADMIN, SYS_ADMIN",
        MOTTAINAI_AGENT_DOCKER_CAP_DROP: "CHOWN",
        MOTTAINAI_AGENT_DOCKER_NETWORK: "host",
        MOTTAINAI_AGENT_DOCKER_BIND_ALLOW: "/srv/a,/srv/b",
        MOTTAINAI_AGENT_DOCKER_DEFAULT_CPUS: "0.5",
        MOTTAINAI_AGENT_DOCKER_MAX_CPUS: "4",
        MOTTAINAI_AGENT_DOCKER_DEFAULT_MEMORY: "256M",
        MOTTAINAI_AGENT_DOCKER_MAX_MEMORY: "1G",
      }).dockerPolicy;
      assert.deepEqual(fromEnv, {
        privileged: true,
        capAdd: ["NET_ADMIN", "SYS_ADMIN"],
        capDrop: ["CHOWN"],
        networkMode: "host",
        bindAllow: ["/srv/a", "/srv/b"],
        defaultCpus: 0.5,
        maxCpus: 4,
        defaultMemory: 256 * 1024 ** 2,
        maxMemory: 1024 ** 3,
      });
      const path = file(
        [
          "docker_privileged: false",
          "docker_cap_add: [NET_ADMIN]",
          "docker_network: none",
          "docker_bind_allow: /srv/cache",
          "docker_max_memory: 1g",
          "docker_max_cpus: 2",
          "",
        ].join("\n"),
      );
      assert.deepEqual(load(["--config", path]).dockerPolicy, {
        privileged: false,
        capAdd: ["NET_ADMIN"],
        capDrop: [],
        networkMode: "none",
        bindAllow: ["/srv/cache"],
        maxCpus: 2,
        maxMemory: 1024 ** 3,
      });
      assert.equal(load(["--docker-privileged", "--config", path]).dockerPolicy.privileged, true, "the flag wins over the file");
      assert.deepEqual(load(["--config", path], { MOTTAINAI_AGENT_DOCKER_CAP_ADD: "SYS_ADMIN" }).dockerPolicy.capAdd, [
        "SYS_ADMIN",
      ]);
    });

    it("rejects bad values, naming the flag, variable or key", () => {
      fails(
        ["--docker-cap-add", "NET ADMIN"],
        '--docker-cap-add: expected a capability name such as "NET_ADMIN" or "ALL", got "NET ADMIN"',
      );
      fails(["--docker-network", ""], '--docker-network: expected a network mode such as "none" or "host", got ""');
      fails(["--docker-bind-allow", "srv/cache"], "--docker-bind-allow: srv/cache is not an absolute path");
      fails(["--docker-bind-allow", "/srv/../etc"], /^--docker-bind-allow: \/srv\/\.\.\/etc is not a normalized path/);
      fails(["--docker-max-cpus=-1"], '--docker-max-cpus: expected a positive number of cpus such as 2 or 0.5, got "-1"');
      fails(
        ["--docker-default-cpus", "0"],
        '--docker-default-cpus: expected a positive number of cpus such as 2 or 0.5, got "0"',
      );
      fails(["--docker-max-memory", "lots"], '--docker-max-memory: expected a size such as "512m" or "2g", got "lots"');
      fails(["--docker-default-memory", "1k"], "--docker-default-memory: 1k is below Docker's minimum of 6m");
      fails(
        ["--docker-default-cpus", "3", "--docker-max-cpus", "2"],
        "--docker-default-cpus: 3 is above the maximum of 2 (--docker-max-cpus)",
      );
      fails(
        ["--docker-default-memory", "2g"],
        "--docker-default-memory: 2g is above the maximum of 1g (MOTTAINAI_AGENT_DOCKER_MAX_MEMORY)",
        { MOTTAINAI_AGENT_DOCKER_MAX_MEMORY: "1024m" },
      );
      fails([], 'MOTTAINAI_AGENT_DOCKER_PRIVILEGED: expected true or false, got "maybe"', {
        MOTTAINAI_AGENT_DOCKER_PRIVILEGED: "maybe",
      });
      const path = file("docker_privileged: [1]\n");
      fails(["--config", path], `${path}: docker_privileged: expected true or false, got a list`);
      const caps = file("docker_cap_add:\n  NET_ADMIN: true\n");
      fails(["--config", caps], `${caps}: docker_cap_add: expected a list, got a mapping`);
    });
  });

  describe("libvirt executor settings", () => {
    it("reads flags, environment and file, and resolves the image dir", () => {
      const c = load(
        ["--executor", "libvirt", "--libvirt-image-dir", "images", "--libvirt-max-cpus", "4", "--libvirt-max-memory", "2g"],
        { MOTTAINAI_AGENT_LIBVIRT_URI: "qemu:///session", MOTTAINAI_AGENT_LIBVIRT_DEFAULT_MEMORY: "256" },
      );
      assert.deepEqual(c.libvirt, {
        uri: "qemu:///session",
        imageDir: join(dir, "images"),
        maxCpus: 4,
        defaultMemoryMiB: 256,
        maxMemoryMiB: 2048,
      });
      const path = file("executors: [libvirt]\nlibvirt_image_dir: vm\nlibvirt_default_cpus: 2\n");
      assert.deepEqual(load(["--config", path]).libvirt, { uri: "qemu:///system", imageDir: join(dir, "vm"), defaultCpus: 2 });
    });

    it("names the setting of a bad value", () => {
      fails(
        ["--executor", "libvirt"],
        "--libvirt-image-dir: the libvirt executor needs the directory of its VM images (MOTTAINAI_AGENT_LIBVIRT_IMAGE_DIR)",
      );
      fails(["--libvirt-uri", "system"], '--libvirt-uri: expected a libvirt URI such as "qemu:///system", got "system"');
      fails(["--libvirt-max-cpus", "1.5"], '--libvirt-max-cpus: expected a whole number of vCPUs such as 2, got "1.5"');
      fails([], 'MOTTAINAI_AGENT_LIBVIRT_MAX_MEMORY: expected MiB or a size such as "512m" or "4g", got "lots"', {
        MOTTAINAI_AGENT_LIBVIRT_MAX_MEMORY: "lots",
      });
      fails(["--libvirt-default-memory", "64m"], "--libvirt-default-memory: 64m is below the minimum of 128 MiB");
      fails(
        ["--libvirt-default-cpus", "3", "--libvirt-max-cpus", "2"],
        "--libvirt-default-cpus: 3 is above the maximum of 2 (--libvirt-max-cpus)",
      );
    });
  });

  describe("lxd executor settings", () => {
    it("reads flags, environment and file", () => {
      const c = load(
        [
          "--executor",
          "lxd",
          "--lxd-socket",
          "lxd.sock",
          "--lxd-allow-privileged",
          "--lxd-max-cpus",
          "4",
          "--lxd-max-memory",
          "2g",
          "--lxd-profile",
          "default",
          "--lxd-profile",
          "ci",
          "--lxd-remote",
          "images=https://images.example.org",
        ],
        { MOTTAINAI_AGENT_LXD_ALLOW_NESTING: "true", MOTTAINAI_AGENT_LXD_BIND_ALLOW: "/srv/cache,/srv/src" },
      );
      assert.deepEqual(c.executors, ["lxd"]);
      assert.deepEqual(c.lxd, {
        endpoint: { socketPath: join(dir, "lxd.sock") },
        remotes: { images: { server: "https://images.example.org" } },
        policy: {
          allowPrivileged: true,
          allowNesting: true,
          bindAllow: ["/srv/cache", "/srv/src"],
          profiles: ["default", "ci"],
          maxCpus: 4,
          maxMemory: 2 * 1024 ** 3,
        },
      });
      const path = file("executors: [lxd]\nlxd_default_cpus: 0.5\nlxd_default_memory: 256m\nlxd_allow_nesting: false\n");
      assert.deepEqual(load(["--config", path]).lxd.policy, {
        ...DEFAULT_LXD_CONFIG.policy,
        defaultCpus: 0.5,
        defaultMemory: 256 * 1024 ** 2,
      });
    });

    it("reads a remote LXD's client certificate files", () => {
      writeFileSync(join(dir, "client.crt"), "CERT");
      writeFileSync(join(dir, "client.key"), "KEY");
      const c = load(["--lxd-url", "https://lxd.example:8443", "--lxd-cert", "client.crt", "--lxd-key", "client.key"]);
      assert.deepEqual(c.lxd.endpoint, { url: "https://lxd.example:8443", cert: "CERT", key: "KEY" });
    });

    it("names the setting of a bad value", () => {
      fails(["--lxd-url", "http://lxd:8443"], '--lxd-url: expected https://host:port of a remote LXD, got "http://lxd:8443"');
      fails(
        ["--lxd-url", "https://lxd:8443"],
        "--lxd-url: a remote LXD needs a trusted client certificate: give --lxd-cert and --lxd-key",
      );
      fails(["--lxd-cert", "c.pem"], "--lxd-cert: only used with --lxd-url");
      fails(["--lxd-max-cpus", "many"], '--lxd-max-cpus: expected a positive number of cpus such as 2 or 0.5, got "many"');
      fails(["--lxd-max-memory", "8m"], "--lxd-max-memory: 8m is below the minimum of 16m");
      fails(
        ["--lxd-default-cpus", "3", "--lxd-max-cpus", "2"],
        "--lxd-default-cpus: 3 is above the maximum of 2 (--lxd-max-cpus)",
      );
      fails(["--lxd-remote", "images"], '--lxd-remote: expected NAME=https://URL of an image server, got "images"');
      fails(["--lxd-bind-allow", "srv"], "--lxd-bind-allow: srv is not an absolute path");
      fails([], 'MOTTAINAI_AGENT_LXD_ALLOW_PRIVILEGED: expected true or false, got "maybe"', {
        MOTTAINAI_AGENT_LXD_ALLOW_PRIVILEGED: "maybe",
      });
    });
  });
});
