import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { Executor, ExecutorInput } from "../executor.js";
import { createLxdClient, LxdError, type LxdClient } from "./lxd-client.js";
import { removeLeftoverLxdContainers } from "./lxd-cleanup.js";
import {
  createLxdExecutor,
  LXD_TASK_KEY,
  lxdContainerName,
  lxdContainerPrefix,
  type LxdExecutorOptions,
} from "./lxd-executor.js";
import { lxdCacheAlias } from "./lxd-image-cache.js";
import { DEFAULT_LXD_POLICY } from "./lxd-policy.js";
import { lxdInstancesWithPrefix, requireLxd, TEST_LXD_IMAGE } from "./require-lxd.js";

const logger = pino({ level: "silent" });

describe("lxd executor specifics (real LXD)", function () {
  let client: LxdClient;
  let root: string;
  const agentLabel = `specifics-${process.pid}`;
  let seq = 0;

  before(async function () {
    const c = await requireLxd(Boolean(process.env.CI));
    if (!c) this.skip();
    client = c;
  });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mottainai-lxd-"));
  });
  afterEach(async () => {
    rmSync(root, { recursive: true, force: true });
    assert.deepEqual(await lxdInstancesWithPrefix(client, lxdContainerPrefix(agentLabel)), [], "no container outlives its task");
  });

  function executor(
    init: MessageInitShape<typeof TaskSpecSchema>,
    options: Partial<LxdExecutorOptions> = {},
    extra: Partial<ExecutorInput> = {},
  ): { executor: Executor; output: () => string; taskId: string } {
    const chunks: Buffer[] = [];
    const taskId = `lxd-${process.pid}-${++seq}`;
    const spec = create(TaskSpecSchema, {
      type: "lxd",
      image: TEST_LXD_IMAGE,
      artefactPath: "artefacts",
      storagePath: "storage",
      ...init,
    });
    const e = createLxdExecutor(
      {
        taskId,
        attempt: 1,
        spec,
        environment: { MOTTAINAI_TASK_ID: taskId },
        workspaceRoot: join(root, "work"),
        onOutput: (c) => chunks.push(Buffer.from(c)),
        logger,
        ...extra,
      },
      { client, agentLabel, ...options },
    );
    return { executor: e, output: () => Buffer.concat(chunks).toString(), taskId };
  }

  async function run(e: Executor): Promise<number | null> {
    try {
      await e.prepare();
      await e.start();
      const result = await e.wait();
      await e.collect();
      return result.exitCode;
    } finally {
      await e.destroy();
    }
  }

  it("refuses a privileged container the agent does not allow before creating anything", async () => {
    const { executor: e, taskId } = executor({ script: ["true"], environment: ["LXD_PRIVILEGED=true"] });
    await assert.rejects(e.prepare(), {
      message: "LXD_PRIVILEGED: this agent does not allow privileged containers (--lxd-allow-privileged)",
    });
    await e.destroy();
    await assert.rejects(client.request("GET", `/1.0/instances/${lxdContainerName(agentLabel, taskId, 1)}`), (err: LxdError) => {
      assert.equal(err.status, 404);
      return true;
    });
  });

  it("names the image when LXD has none of that alias or fingerprint", async () => {
    const { executor: e } = executor({ script: ["true"], image: "no-such-image" });
    await assert.rejects(e.prepare(), {
      message: 'image: LXD at unix:///var/lib/lxd/unix.socket has no image with alias or fingerprint "no-such-image"',
    });
    await e.destroy();
  });

  it("takes a fingerprint prefix as the image", async () => {
    const { target } = await client.request<{ target: string }>("GET", `/1.0/images/aliases/${TEST_LXD_IMAGE}`);
    const { executor: e, output } = executor({ script: ["echo by fingerprint"], image: target.slice(0, 12) });
    assert.equal(await run(e), 0);
    assert.equal(output(), "by fingerprint\n");
  });

  it("creates the container with the task's limits and nesting when allowed, and records the task", async () => {
    const { executor: e, taskId } = executor(
      { script: ["true"], environment: ["CPU=1", "RAM=64m", "LXD_NESTING=true"] },
      { policy: { ...DEFAULT_LXD_POLICY, allowNesting: true, maxMemory: 128 * 1024 ** 2 } },
    );
    try {
      await e.prepare();
      const instance = await client.request<{ config: Record<string, string> }>(
        "GET",
        `/1.0/instances/${lxdContainerName(agentLabel, taskId, 1)}`,
      );
      assert.equal(instance.config["limits.cpu"], "1");
      assert.equal(instance.config["limits.memory"], `${64 * 1024 ** 2}B`);
      assert.equal(instance.config["security.nesting"], "true");
      assert.equal(instance.config[LXD_TASK_KEY], taskId);
    } finally {
      await e.destroy();
    }
  });

  it("copies staged inputs into the container and pulls artefacts out, replacing the staged copy", async () => {
    const { executor: e, output } = executor(
      {
        script: [
          'cat "$MOTTAINAI_ARTEFACT_PATH/input.txt" "$MOTTAINAI_STORAGE_PATH/data.txt"',
          'rm "$MOTTAINAI_ARTEFACT_PATH/input.txt"',
          'echo made > "$MOTTAINAI_ARTEFACT_PATH/made.txt"',
        ],
      },
      {},
      {
        stageInputs: async ({ artefactDir, storageDir }) => {
          writeFileSync(join(artefactDir, "input.txt"), "from a root task\n");
          writeFileSync(join(storageDir, "data.txt"), "from a storage\n");
        },
      },
    );
    await e.prepare();
    await e.start();
    assert.equal((await e.wait()).exitCode, 0);
    const { artefactDir } = await e.collect();
    assert.equal(output(), "from a root task\nfrom a storage\n");
    assert.ok(artefactDir);
    assert.equal(await readFile(join(artefactDir, "made.txt"), "utf8"), "made\n");
    assert.equal(existsSync(join(artefactDir, "input.txt")), false);
    await e.destroy();
  });

  it("checks out source at commit on the agent and runs the script in the checkout inside the container", async () => {
    const repo = join(root, "repo");
    mkdirSync(repo);
    const git = (...args: string[]): string =>
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main", ...args], {
        cwd: repo,
        encoding: "utf8",
      }).trim();
    git("init", "--quiet");
    writeFileSync(join(repo, "file.txt"), "first\n");
    git("add", "file.txt");
    git("commit", "--quiet", "-m", "first");
    const first = git("rev-parse", "HEAD");
    writeFileSync(join(repo, "file.txt"), "second\n");
    git("commit", "--quiet", "-am", "second");
    const { executor: e, output } = executor({ source: repo, commit: first, script: ["cat file.txt", "pwd"] });
    assert.equal(await run(e), 0);
    assert.equal(output(), "first\n/mottainai/workspace\n");
  });

  it("pulls 16 MiB of artefacts out intact", async () => {
    const { executor: e, output } = executor({
      script: [
        'head -c 16777216 /dev/urandom > "$MOTTAINAI_ARTEFACT_PATH/big.bin"',
        'sha256sum "$MOTTAINAI_ARTEFACT_PATH/big.bin" | cut -c1-64',
      ],
    });
    await e.prepare();
    await e.start();
    assert.equal((await e.wait()).exitCode, 0);
    const { artefactDir } = await e.collect();
    assert.ok(artefactDir);
    const bytes = await readFile(join(artefactDir, "big.bin"));
    assert.equal(bytes.length, 16 * 1024 * 1024);
    assert.equal(`${createHash("sha256").update(bytes).digest("hex")}\n`, output());
    await e.destroy();
  });

  it("collects nothing when the script removed the artefact directory", async () => {
    const { executor: e } = executor({ script: ['rm -rf "$MOTTAINAI_ARTEFACT_PATH"'] });
    await e.prepare();
    await e.start();
    assert.equal((await e.wait()).exitCode, 0);
    assert.deepEqual(await e.collect(), {});
    await e.destroy();
  });

  it("cache_image publishes a successful run and reuses it; cache_clean starts over and replaces it", async () => {
    const directory = `cache-${process.pid}`;
    const alias = lxdCacheAlias(TEST_LXD_IMAGE, "", directory);
    const aliasTarget = async (): Promise<string | undefined> =>
      (await client.request<{ target: string }>("GET", `/1.0/images/aliases/${alias}`).catch(() => undefined))?.target;
    try {
      const first = executor({ script: ["echo one >> /cache-marker"], directory, cacheImage: true });
      assert.equal(await run(first.executor), 0);
      assert.match(
        first.output(),
        new RegExp(
          `^No cached image ${alias} yet: starting from ${TEST_LXD_IMAGE}\nSaved the cached image ${alias} \\(\\w{12}\\)\n$`,
        ),
      );
      const firstImage = await aliasTarget();
      assert.ok(firstImage);

      const second = executor({
        script: ["echo two >> /cache-marker", "cat /cache-marker", "ls /mottainai/workspace"],
        directory,
        cacheImage: true,
      });
      assert.equal(await run(second.executor), 0);
      assert.match(second.output(), /^Using cached image \S+ \(\w{12}\)\none\ntwo\nartefacts\ncache-\d+\nstorage\nSaved/);
      const secondImage = await aliasTarget();
      assert.notEqual(secondImage, firstImage);
      await assert.rejects(client.request("GET", `/1.0/images/${firstImage}`), { status: 404 });

      const clean = executor({
        script: ["cat /cache-marker 2>/dev/null || echo clean"],
        directory,
        cacheImage: true,
        cacheClean: true,
      });
      assert.equal(await run(clean.executor), 0);
      assert.match(clean.output(), /^clean\nSaved the cached image/);
      assert.notEqual(await aliasTarget(), secondImage);
    } finally {
      const target = await aliasTarget();
      if (target !== undefined) await client.operation("DELETE", `/1.0/images/${target}`);
    }
  });

  it("removeLeftoverLxdContainers deletes this agent's containers, running or not, and only those", async () => {
    const mine = [`${lxdContainerPrefix(agentLabel)}left1`, `${lxdContainerPrefix(agentLabel)}left2`];
    const other = `${lxdContainerPrefix(`other-${process.pid}`)}kept`;
    const source = { type: "image", alias: TEST_LXD_IMAGE };
    try {
      for (const name of [...mine, other]) await client.operation("POST", "/1.0/instances", { name, source, type: "container" });
      await client.operation("PUT", `/1.0/instances/${mine[0]}/state`, { action: "start" });
      assert.deepEqual((await removeLeftoverLxdContainers(client, agentLabel, logger)).sort(), mine);
      assert.deepEqual(await lxdInstancesWithPrefix(client, lxdContainerPrefix(agentLabel)), []);
      assert.deepEqual(await lxdInstancesWithPrefix(client, other), [other]);
    } finally {
      await client.operation("DELETE", `/1.0/instances/${other}`).catch(() => undefined);
    }
  });
});

describe("lxd executor checks before it talks to LXD", () => {
  const unreachable = createLxdClient({ socketPath: "/nonexistent/lxd.socket" });
  const prepare = (init: MessageInitShape<typeof TaskSpecSchema>, options: Partial<LxdExecutorOptions> = {}) => {
    const root = mkdtempSync(join(tmpdir(), "mottainai-lxd-checks-"));
    const e = createLxdExecutor(
      {
        taskId: "checks",
        attempt: 1,
        spec: create(TaskSpecSchema, { type: "lxd", script: ["true"], ...init }),
        environment: {},
        workspaceRoot: join(root, "work"),
        onOutput: () => undefined,
        logger,
      },
      { client: unreachable, agentLabel: "checks", ...options },
    );
    return e.prepare().finally(async () => {
      await e.destroy();
      rmSync(root, { recursive: true, force: true });
    });
  };

  it("needs an image", async () => {
    await assert.rejects(prepare({ image: " " }), {
      message: "image: an lxd task needs an image (an LXD image alias or fingerprint)",
    });
  });

  it("names an image server the agent does not know", async () => {
    await assert.rejects(prepare({ image: "images:debian/12" }, { remotes: { ours: { server: "https://images.example" } } }), {
      message: 'image: "images:debian/12" names the image server "images", which this agent does not know (known: ours)',
    });
  });

  it("refuses a bad directory before anything else", async () => {
    await assert.rejects(prepare({ image: "x", directory: "../out" }), {
      message: 'directory: must stay inside the workspace, got "../out"',
    });
  });

  it("refuses an agent label that cannot be part of a container name", () => {
    assert.throws(() => prepare({ image: "x" }, { agentLabel: "Not_Valid" }), {
      message: 'lxd: the agent label "Not_Valid" must be 1-36 lowercase letters, digits or "-"',
    });
  });
});
