import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ConfigError, loadServerConfig } from "./config.js";

describe("loadServerConfig", () => {
  it("has embedded defaults", () => {
    const c = loadServerConfig([], {});
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.port, 9090);
    assert.equal(c.dataDir, resolve(".mottainai/server"));
    assert.equal(c.adminTokenFile, resolve(".mottainai/server/admin-token"));
    assert.equal(c.heartbeatIntervalMs, 10_000);
    assert.equal(c.leaseTtlMs, 30_000);
    assert.equal(c.maxInfraRetries, 2);
  });

  it("prefers flags over environment over file", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "server.yaml");
    writeFileSync(file, "listen: 0.0.0.0:7000\nheartbeat_interval: 2s\nlease-ttl: 9s\nlog_level: warn\n");
    const c = loadServerConfig(["--config", file, "--lease-ttl", "5s"], {
      MOTTAINAI_LISTEN: "127.0.0.2:8000",
      MOTTAINAI_HEARTBEAT_INTERVAL: "1s",
    });
    assert.equal(c.host, "127.0.0.2");
    assert.equal(c.port, 8000);
    assert.equal(c.heartbeatIntervalMs, 1000);
    assert.equal(c.leaseTtlMs, 5000);
    assert.equal(c.logLevel, "warn");
  });

  it("names the flag, variable or key of a bad value", () => {
    assert.throws(() => loadServerConfig(["--listen", "nowhere"], {}), {
      name: "ConfigError",
      message: '--listen: expected HOST:PORT such as "127.0.0.1:9090", got "nowhere"',
    });
    assert.throws(() => loadServerConfig([], { MOTTAINAI_LEASE_TTL: "soon" }), {
      message: 'MOTTAINAI_LEASE_TTL: expected a duration of at least 200 ms such as "10s" or "500ms", got "soon"',
    });
    assert.throws(() => loadServerConfig(["--heartbeat-interval", "10s", "--lease-ttl", "5s"], {}), {
      message: "lease-ttl (5000 ms) must be longer than heartbeat-interval (10000 ms)",
    });
    assert.throws(() => loadServerConfig(["--bogus"], {}), ConfigError);
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    writeFileSync(join(dir, "c.yaml"), "listen_port: 1\n");
    assert.throws(() => loadServerConfig(["--config", join(dir, "c.yaml")], {}), {
      message: `${join(dir, "c.yaml")}: unknown setting "listen_port"`,
    });
  });
});
