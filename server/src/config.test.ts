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
    assert.equal(c.taskRetentionMs, 0, "every task is kept unless a retention is set");
  });

  it("reads the task retention in days, hours or less, and names a bad one", () => {
    assert.equal(loadServerConfig(["--task-retention", "30d"], {}).taskRetentionMs, 30 * 86_400_000);
    assert.equal(loadServerConfig([], { MOTTAINAI_TASK_RETENTION: "12h" }).taskRetentionMs, 12 * 3_600_000);
    assert.throws(() => loadServerConfig(["--task-retention", "a month"], {}), {
      message: '--task-retention: expected a duration of at least 0 ms such as "10s" or "500ms", got "a month"',
    });
  });

  it("reads the plan sweep interval and late grace, refusing a grace under a second", () => {
    const c = loadServerConfig([], {});
    assert.equal(c.planSweepIntervalMs, 2000);
    assert.equal(c.planLateGraceMs, 60_000);
    const set = loadServerConfig(["--plan-sweep-interval", "500ms"], { MOTTAINAI_PLAN_LATE_GRACE: "5m" });
    assert.equal(set.planSweepIntervalMs, 500);
    assert.equal(set.planLateGraceMs, 300_000);
    assert.throws(() => loadServerConfig(["--plan-late-grace", "10ms"], {}), {
      message: '--plan-late-grace: expected a duration of at least 1000 ms such as "10s" or "500ms", got "10ms"',
    });
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

  it("picks the blob store: local by default, s3 with its options, each mistake named", () => {
    assert.equal(loadServerConfig([], {}).blobs, "local");
    assert.equal(loadServerConfig([], {}).s3, undefined);
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    writeFileSync(join(dir, "s3.yaml"), "blobs: s3\ns3_endpoint: http://127.0.0.1:7480\ns3-bucket: artefacts\n");
    const c = loadServerConfig(["--config", join(dir, "s3.yaml"), "--s3-access-key", "AK"], { MOTTAINAI_S3_SECRET_KEY: "SK" });
    assert.equal(c.blobs, "s3");
    assert.deepEqual(c.s3, {
      endpoint: "http://127.0.0.1:7480",
      bucket: "artefacts",
      region: "us-east-1",
      accessKeyId: "AK",
      secretAccessKey: "SK",
    });
    assert.throws(() => loadServerConfig(["--blobs", "s3", "--s3-bucket", "b1b"], {}), {
      name: "ConfigError",
      message: "--s3-endpoint (MOTTAINAI_S3_ENDPOINT) is required with --blobs s3",
    });
    assert.throws(() => loadServerConfig(["--blobs", "s3"], { MOTTAINAI_S3_ENDPOINT: "http://h:1" }), {
      message: "--s3-bucket (MOTTAINAI_S3_BUCKET) is required with --blobs s3",
    });
    assert.throws(() => loadServerConfig([], { MOTTAINAI_BLOBS: "gridfs" }), {
      message: /^MOTTAINAI_BLOBS: gridfs keeps blobs in the MongoDB database of --store, but the store is sqlite/,
    });
    assert.throws(() => loadServerConfig(["--blobs", "s3", "--s3-endpoint", "127.0.0.1:7480", "--s3-bucket", "b1b"], {}), {
      message: '--s3-endpoint: expected an http(s) URL such as "http://127.0.0.1:7480", got "127.0.0.1:7480"',
    });
    assert.throws(() => loadServerConfig(["--blobs", "s3", "--s3-endpoint", "http://h:1", "--s3-bucket", "B"], {}), {
      message: '--s3-bucket: expected a bucket name of 3 to 63 lower-case letters, digits, dots and hyphens, got "B"',
    });
    assert.throws(
      () => loadServerConfig(["--blobs", "s3", "--s3-endpoint", "http://h:1", "--s3-bucket", "b1b", "--s3-secret-key", "x"], {}),
      {
        message: "--s3-secret-key: --s3-access-key and --s3-secret-key go together",
      },
    );
    assert.throws(() => loadServerConfig(["--s3-bucket", "b1b"], {}), {
      message: "--s3-bucket: only used with --blobs s3 (the blob store is local)",
    });
  });
});
