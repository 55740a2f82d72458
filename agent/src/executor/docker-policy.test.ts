import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { pino } from "pino";
import { createDockerExecutor, TASK_LABEL } from "./docker-executor.js";
import {
  checkBinds,
  containerLimits,
  DEFAULT_DOCKER_POLICY,
  formatMemorySize,
  parseCpus,
  parseMemorySize,
  type DockerPolicy,
} from "./docker-policy.js";
import type { ExecutorInput, ExecutorResult } from "./executor.js";
import { workspaceName } from "./host-executor.js";
import { dockerSandbox, TEST_IMAGE } from "./require-docker.js";

const logger = pino({ level: "silent" });
const MiB = 1024 * 1024;

function policyWith(changes: Partial<DockerPolicy>): DockerPolicy {
  return { ...DEFAULT_DOCKER_POLICY, ...changes };
}

describe("docker policy helpers", () => {
  it("parses memory sizes as Docker writes them", () => {
    assert.equal(parseMemorySize("512m"), 512 * MiB);
    assert.equal(parseMemorySize("2g"), 2 * 1024 * MiB);
    assert.equal(parseMemorySize("1.5GB"), 1536 * MiB);
    assert.equal(parseMemorySize("4096"), 4096);
    assert.equal(parseMemorySize("64k"), 65536);
    for (const bad of ["", "m", "-1m", "1x", "0", "1 2m"]) assert.equal(parseMemorySize(bad), undefined, bad);
    assert.equal(formatMemorySize(1024 * MiB), "1g");
    assert.equal(formatMemorySize(1536 * MiB), "1536m");
    assert.equal(formatMemorySize(1000), "1000");
  });

  it("parses cpus", () => {
    assert.equal(parseCpus("2"), 2);
    assert.equal(parseCpus("0.5"), 0.5);
    for (const bad of ["", "0", "-1", "1e3", "two", "0.0000000001"]) assert.equal(parseCpus(bad), undefined, bad);
  });

  it("takes CPU= and RAM= within the maximums, else the defaults", () => {
    const policy = policyWith({ defaultCpus: 1, maxCpus: 2, defaultMemory: 128 * MiB, maxMemory: 1024 * MiB });
    assert.deepEqual(containerLimits(policy, []), { nanoCpus: 1e9, memory: 128 * MiB });
    assert.deepEqual(containerLimits(policy, ["CPU=0.5", "RAM=1g"]), { nanoCpus: 5e8, memory: 1024 * MiB });
    assert.deepEqual(containerLimits(policy, ["RAM=2g", "RAM=64m"]), { nanoCpus: 1e9, memory: 64 * MiB }, "the last entry wins");
    assert.deepEqual(containerLimits(DEFAULT_DOCKER_POLICY, []), {}, "no limit by default");
    assert.deepEqual(containerLimits(DEFAULT_DOCKER_POLICY, ["CPU=8", "RAM=16g"]), { nanoCpus: 8e9, memory: 16 * 1024 * MiB });
    assert.throws(() => containerLimits(policy, ["CPU=3"]), { message: "CPU: 3 is above this agent's maximum of 2" });
    assert.throws(() => containerLimits(policy, ["RAM=2g"]), { message: "RAM: 2g is above this agent's maximum of 1g" });
    assert.throws(() => containerLimits(policy, ["CPU=lots"]), {
      message: 'CPU: expected a positive number of CPUs such as "2" or "0.5", got "lots"',
    });
    assert.throws(() => containerLimits(policy, ["RAM=big"]), {
      message: 'RAM: expected a size such as "512m" or "2g", got "big"',
    });
    assert.throws(() => containerLimits(policy, ["RAM=1m"]), { message: "RAM: 1m is below Docker's minimum of 6m" });
  });

  describe("checkBinds", () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), "mottainai-binds-"));
      mkdirSync(join(dir, "allowed", "cache"), { recursive: true });
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("accepts binds under an allowed prefix and keeps the mode", async () => {
      const allowed = join(dir, "allowed");
      const policy = policyWith({ bindAllow: [allowed] });
      assert.deepEqual(await checkBinds(policy, [`${allowed}/cache:/cache:ro`, `${allowed}:/a`, `${allowed}/new/dir:/b:rw`]), [
        `${allowed}/cache:/cache:ro`,
        `${allowed}:/a`,
        `${allowed}/new/dir:/b:rw`,
      ]);
    });

    it("rejects each kind of bad bind, naming the entry and the path", async () => {
      const allowed = join(dir, "allowed");
      const policy = policyWith({ bindAllow: [allowed] });
      const rejects = (bind: string, message: string) =>
        assert.rejects(checkBinds(policy, [`${allowed}/cache:/ok`, bind]), { message });
      await rejects("/etc:/etc", `binds[1]: /etc is not under an allowed bind path (allowed: ${allowed})`);
      await rejects(`${allowed}x:/x`, `binds[1]: ${allowed}x is not under an allowed bind path (allowed: ${allowed})`);
      await rejects(
        `${allowed}/../etc:/x`,
        `binds[1]: ${allowed}/../etc is not a normalized path (no "..", "." or repeated slashes)`,
      );
      await rejects("cache:/x", "binds[1]: cache is not an absolute path");
      await rejects(`${allowed}/cache:rel`, "binds[1]: the container path rel is not absolute");
      await rejects(`${allowed}/cache:/x:rx`, `binds[1]: expected host:container[:ro|rw], got "${allowed}/cache:/x:rx"`);
      await rejects(`${allowed}/cache`, `binds[1]: expected host:container[:ro|rw], got "${allowed}/cache"`);
      await assert.rejects(checkBinds(DEFAULT_DOCKER_POLICY, ["/srv/cache:/c"]), {
        message: "binds[0]: /srv/cache is not under an allowed bind path (allowed: none)",
      });
    });

    it("rejects a symbolic link leading out of the allowed paths", async () => {
      const allowed = join(dir, "allowed");
      symlinkSync("/etc", join(allowed, "etc"));
      await assert.rejects(checkBinds(policyWith({ bindAllow: [allowed] }), [`${allowed}/etc/x:/x`]), {
        message: `binds[0]: ${allowed}/etc/x resolves to /etc/x, which is not under an allowed bind path (allowed: ${allowed})`,
      });
    });
  });
});

describe("docker executor policy (real dockerd)", function () {
  const sandbox = dockerSandbox({ prefix: "docker-policy", ci: Boolean(process.env.CI), host: process.env.DOCKER_HOST });
  const { agentLabel } = sandbox;
  let docker: Docker;
  let root: string;
  let seq = 0;
  beforeEach(() => {
    ({ docker, root } = sandbox);
  });

  function make(spec: MessageInitShape<typeof TaskSpecSchema>, policy: Partial<DockerPolicy> = {}) {
    const output: Buffer[] = [];
    const taskId = `policy-${process.pid}-${++seq}`;
    const input: ExecutorInput = {
      taskId,
      attempt: 1,
      spec: create(TaskSpecSchema, { type: "docker", image: TEST_IMAGE, ...spec }),
      environment: {},
      workspaceRoot: join(root, "work"),
      onOutput: (chunk) => output.push(chunk),
      logger,
    };
    const executor = createDockerExecutor(input, { docker, agentLabel, policy: policyWith(policy) });
    return { executor, output, taskId, workspace: join(root, "work", workspaceName(taskId, 1)) };
  }

  const assertGone = (taskId: string, workspace: string) => sandbox.assertGone(taskId, workspace);

  async function run(
    spec: MessageInitShape<typeof TaskSpecSchema>,
    policy: Partial<DockerPolicy> = {},
    inspect?: (container: Docker.ContainerInspectInfo) => void,
  ): Promise<{ text: string; result: ExecutorResult }> {
    const { executor, output, taskId, workspace } = make(spec, policy);
    try {
      await executor.prepare();
      if (inspect) {
        const [info] = await docker.listContainers({ all: true, filters: { label: [`${TASK_LABEL}=${taskId}`] } });
        assert.ok(info, "the container exists after prepare");
        inspect(await docker.getContainer(info.Id).inspect());
      }
      await executor.start();
      const result = await executor.wait();
      return { text: Buffer.concat(output).toString(), result };
    } finally {
      await executor.destroy();
      await assertGone(taskId, workspace);
    }
  }

  /** prepare() must reject with `message` and leave no container and no workspace, even before destroy(). */
  async function rejectedInPrepare(
    spec: MessageInitShape<typeof TaskSpecSchema>,
    policy: Partial<DockerPolicy>,
    message: string,
  ) {
    const { executor, taskId, workspace } = make(spec, policy);
    try {
      await assert.rejects(executor.prepare(), { message });
      await assertGone(taskId, workspace);
    } finally {
      await executor.destroy();
    }
    await assertGone(taskId, workspace);
  }

  const mountTmpfs = ["mkdir -p /mnt-test", "mount -t tmpfs none /mnt-test", "echo mounted"];

  it("runs unprivileged by default: mount -t tmpfs fails", async () => {
    const { text, result } = await run({ script: mountTmpfs }, {}, (info) => assert.equal(info.HostConfig.Privileged, false));
    assert.notEqual(result.exitCode, 0);
    assert.doesNotMatch(text, /mounted/);
  });

  it("runs privileged with --docker-privileged: mount -t tmpfs works (where the engine can start one)", async () => {
    const { executor, output, taskId, workspace } = make({ script: mountTmpfs }, { privileged: true });
    try {
      await executor.prepare();
      const [info] = await docker.listContainers({ all: true, filters: { label: [`${TASK_LABEL}=${taskId}`] } });
      assert.equal((await docker.getContainer(info?.Id ?? "").inspect()).HostConfig.Privileged, true);
      try {
        await executor.start();
      } catch (err) {
        // dockerd 20.10 gives a privileged container every capability the kernel knows; where the
        // engine itself runs with a reduced bounding set (this CI sandbox lacks CAP_SYS_RESOURCE),
        // runc cannot apply them and no privileged container can start. Only that may explain it.
        const bounding = BigInt(`0x${/CapBnd:\s+([0-9a-f]+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0"}`);
        const lastCap = BigInt(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8").trim());
        assert.notEqual(
          bounding,
          (1n << (lastCap + 1n)) - 1n,
          `a privileged container failed with a full bounding set: ${String(err)}`,
        );
        assert.match((err as Error).message, /unable to apply caps: operation not permitted/);
        return;
      }
      assert.deepEqual(await executor.wait(), { exitCode: 0 });
      assert.equal(Buffer.concat(output).toString(), "mounted\n");
    } finally {
      await executor.destroy();
      await assertGone(taskId, workspace);
    }
  });

  it("with --docker-cap-add SYS_ADMIN, mount -t tmpfs works", async () => {
    const { text, result } = await run({ script: mountTmpfs }, { capAdd: ["SYS_ADMIN"] }, (info) =>
      assert.deepEqual(info.HostConfig.CapAdd, ["SYS_ADMIN"]),
    );
    assert.deepEqual(result, { exitCode: 0 });
    assert.equal(text, "mounted\n");
  });

  it("adds and drops capabilities", async () => {
    const capEff = async (policy: Partial<DockerPolicy>): Promise<bigint> => {
      const { text } = await run({ script: ["grep CapEff /proc/self/status"] }, policy);
      const m = /^CapEff:\s+([0-9a-f]+)\n$/.exec(text);
      assert.ok(m, text);
      return BigInt(`0x${m[1]}`);
    };
    const CAP_NET_ADMIN = 1n << 12n;
    assert.equal((await capEff({})) & CAP_NET_ADMIN, 0n);
    assert.equal((await capEff({ capAdd: ["NET_ADMIN"] })) & CAP_NET_ADMIN, CAP_NET_ADMIN);

    const chown = { script: ["touch /f", "chown 1 /f", "echo chowned"] };
    assert.deepEqual((await run(chown)).result, { exitCode: 0 });
    const dropped = await run(chown, { capDrop: ["CHOWN"] });
    assert.notEqual(dropped.result.exitCode, 0);
    assert.doesNotMatch(dropped.text, /chowned/);
  });

  it("uses the policy's network mode: none has only lo, host sees the host's interfaces", async () => {
    const none = await run({ script: ["ls /sys/class/net"] });
    assert.equal(none.text, "lo\n");
    const host = await run({ script: ["ls /sys/class/net"] }, { networkMode: "host" }, (info) =>
      assert.equal(info.HostConfig.NetworkMode, "host"),
    );
    assert.equal(host.text, `${readdirSync("/sys/class/net").sort().join("\n")}\n`);
  });

  it("applies the default memory and cpus, and a task's RAM= and CPU= within the maximums", async () => {
    const policy = { defaultCpus: 1, maxCpus: 2, defaultMemory: 128 * MiB, maxMemory: 1024 * MiB };
    const limit = ["cat /sys/fs/cgroup/memory/memory.limit_in_bytes"];
    const byDefault = await run({ script: limit }, policy, (info) => {
      assert.equal(info.HostConfig.NanoCpus, 1e9);
      assert.equal(info.HostConfig.Memory, 128 * MiB);
    });
    assert.equal(byDefault.text, `${128 * MiB}\n`);
    const asked = await run({ script: limit, environment: ["CPU=0.5", "RAM=64m"] }, policy, (info) =>
      assert.equal(info.HostConfig.NanoCpus, 5e8),
    );
    assert.equal(asked.text, `${64 * MiB}\n`);
  });

  it("rejects RAM= and CPU= above the maximum in prepare, creating nothing", async () => {
    const policy = { maxCpus: 1, maxMemory: 1024 * MiB };
    await rejectedInPrepare({ script: ["true"], environment: ["RAM=2g"] }, policy, "RAM: 2g is above this agent's maximum of 1g");
    await rejectedInPrepare({ script: ["true"], environment: ["CPU=2"] }, policy, "CPU: 2 is above this agent's maximum of 1");
  });

  it("rejects a bind outside the allowlist naming the path, creating nothing", async () => {
    const allowed = join(root, "cache");
    mkdirSync(allowed);
    await rejectedInPrepare(
      { script: ["true"], binds: [`${allowed}:/cache`, "/etc:/host-etc"] },
      { bindAllow: [allowed] },
      `binds[1]: /etc is not under an allowed bind path (allowed: ${allowed})`,
    );
    await rejectedInPrepare(
      { script: ["true"], binds: [`${allowed}:/cache`] },
      {},
      `binds[0]: ${allowed} is not under an allowed bind path (allowed: none)`,
    );
  });

  it("mounts an allowed bind, readable inside, read-only with :ro", async () => {
    const allowed = join(root, "cache");
    mkdirSync(join(allowed, "distfiles"), { recursive: true });
    writeFileSync(join(allowed, "distfiles", "hello.txt"), "from the host\n");
    const { text, result } = await run(
      {
        script: ["cat /distfiles/hello.txt", "touch /distfiles/new || echo read-only"],
        binds: [`${allowed}/distfiles:/distfiles:ro`],
      },
      { bindAllow: [allowed] },
    );
    assert.deepEqual(result, { exitCode: 0 });
    assert.match(text, /^from the host\n(touch: .*\n)?read-only\n$/);
    assert.equal(existsSync(join(allowed, "distfiles", "new")), false);
  });

  describe("checkout", () => {
    let repo: string;
    let first: string;
    const git = (cwd: string, ...args: string[]): string =>
      execFileSync("git", ["-c", "user.name=Test", "-c", "user.email=test@example.org", ...args], {
        cwd,
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cwd, GIT_CONFIG_NOSYSTEM: "1" },
      }).trim();

    beforeEach(() => {
      repo = join(root, "repo.git");
      const clone = join(root, "clone");
      mkdirSync(clone);
      git(root, "init", "--quiet", "--bare", repo);
      git(clone, "init", "--quiet");
      mkdirSync(join(clone, "proj"));
      writeFileSync(join(clone, "proj", "version.txt"), "v1\n");
      git(clone, "add", ".");
      git(clone, "commit", "--quiet", "-m", "v1");
      first = git(clone, "rev-parse", "HEAD");
      writeFileSync(join(clone, "proj", "version.txt"), "v2\n");
      git(clone, "commit", "--quiet", "-am", "v2");
      git(clone, "push", "--quiet", repo, "HEAD:refs/heads/main");
      git(repo, "symbolic-ref", "HEAD", "refs/heads/main");
    });

    it("checks out source at commit on the agent; the container works in `directory` of it", async () => {
      const { text, result } = await run({
        source: repo,
        commit: first,
        directory: "proj",
        script: ["pwd", "cat version.txt", "ls -d ../artefacts ../storage ../.git"],
      });
      assert.deepEqual(result, { exitCode: 0 });
      assert.equal(text, "/mottainai/workspace/proj\nv1\n../.git\n../artefacts\n../storage\n");
    });

    it("checks out the default branch without a commit", async () => {
      const { text } = await run({ source: repo, directory: "proj", script: ["cat version.txt"] });
      assert.equal(text, "v2\n");
    });

    it("fails prepare naming the commit when it does not exist, leaving no container", async () => {
      const { executor, taskId, workspace } = make({ source: repo, commit: "0123456789abcdef", script: ["true"] });
      try {
        await assert.rejects(executor.prepare(), /^Error: commit: checking out 0123456789abcdef failed \(exit code \d+\)$/);
        const left = await docker.listContainers({ all: true, filters: { label: [`${TASK_LABEL}=${taskId}`] } });
        assert.deepEqual(left, []);
      } finally {
        await executor.destroy();
      }
      await assertGone(taskId, workspace);
    });
  });
});
