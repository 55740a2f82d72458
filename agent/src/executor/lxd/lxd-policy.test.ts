import assert from "node:assert/strict";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_LXD_POLICY, lxdInstanceSettings, type LxdPolicy } from "./lxd-policy.js";

describe("lxdInstanceSettings", () => {
  const settings = (policy: Partial<LxdPolicy>, environment: string[], binds: string[] = []) =>
    lxdInstanceSettings({ ...DEFAULT_LXD_POLICY, ...policy }, { environment, binds });
  const refuses = async (policy: Partial<LxdPolicy>, environment: string[], message: string, binds: string[] = []) =>
    assert.rejects(settings(policy, environment, binds), (err: Error) => {
      assert.equal(err.message, message);
      return true;
    });

  it("gives an unconfigured agent's container no limits and no extra rights", async () => {
    assert.deepEqual(await settings({}, ["A=1"]), { config: {}, devices: {} });
    assert.deepEqual(await settings({}, ["LXD_PRIVILEGED=false", "LXD_NESTING=0"]), { config: {}, devices: {} });
  });

  it("maps CPU= and RAM= to LXD limits, the last entry winning, else the defaults", async () => {
    assert.deepEqual((await settings({}, ["CPU=1", "CPU=2", "RAM=512m"])).config, {
      "limits.cpu": "2",
      "limits.memory": `${512 * 1024 * 1024}B`,
    });
    assert.deepEqual((await settings({}, ["CPU=0.5"])).config, { "limits.cpu.allowance": "50ms/100ms" });
    assert.deepEqual((await settings({ defaultCpus: 1, defaultMemory: 256 * 1024 ** 2 }, [])).config, {
      "limits.cpu": "1",
      "limits.memory": `${256 * 1024 ** 2}B`,
    });
  });

  it("refuses limits above the maximums or malformed, naming the variable", async () => {
    await refuses({ maxCpus: 2 }, ["CPU=4"], "CPU: 4 is above this agent's maximum of 2");
    await refuses({ maxMemory: 1024 ** 3 }, ["RAM=2g"], "RAM: 2g is above this agent's maximum of 1g");
    await refuses({}, ["CPU=lots"], 'CPU: expected a positive number of CPUs such as "2" or "0.5", got "lots"');
    await refuses({}, ["RAM=big"], 'RAM: expected a size such as "512m" or "2g", got "big"');
    await refuses({}, ["RAM=1m"], "RAM: 1m is below the minimum of 16m");
  });

  it("allows privileged and nested containers only when the agent does, naming the key", async () => {
    await refuses(
      {},
      ["LXD_PRIVILEGED=true"],
      "LXD_PRIVILEGED: this agent does not allow privileged containers (--lxd-allow-privileged)",
    );
    await refuses({}, ["LXD_NESTING=yes"], "LXD_NESTING: this agent does not allow nested containers (--lxd-allow-nesting)");
    await refuses({ allowPrivileged: true }, ["LXD_PRIVILEGED=sure"], 'LXD_PRIVILEGED: expected true or false, got "sure"');
    assert.deepEqual(
      (await settings({ allowPrivileged: true, allowNesting: true }, ["LXD_PRIVILEGED=true", "LXD_NESTING=1"])).config,
      { "security.privileged": "true", "security.nesting": "true" },
    );
  });

  it("turns binds under the allowed paths into disk devices and refuses others naming the entry", async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), "mottainai-lxd-policy-")));
    try {
      assert.deepEqual((await settings({ bindAllow: [dir] }, [], [`${dir}/cache:/cache`, `${dir}:/src:ro`])).devices, {
        bind0: { type: "disk", source: `${dir}/cache`, path: "/cache" },
        bind1: { type: "disk", source: dir, path: "/src", readonly: "true" },
      });
      await refuses({}, [], "binds[0]: /etc is not under an allowed bind path (allowed: none) (--lxd-bind-allow)", ["/etc:/etc"]);
      await refuses({ bindAllow: [dir] }, [], 'binds[0]: expected host:container[:ro|rw], got "nocolon"', ["nocolon"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
