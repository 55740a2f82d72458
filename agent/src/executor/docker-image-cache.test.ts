import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { pino } from "pino";
import { loadAgentConfig } from "../config.js";
import { AGENT_LABEL, createDockerExecutor } from "./docker-executor.js";
import { CACHE_REPOSITORY, cacheImageName } from "./docker-image-cache.js";
import type { ExecutorInput, ExecutorResult } from "./executor.js";
import { dockerSandbox, TEST_IMAGE } from "./require-docker.js";

const logger = pino({ level: "silent" });
const REGISTRY = process.env.MOTTAINAI_TEST_REGISTRY ?? "127.0.0.1:5000";

/** Whether the registry answers; in CI its absence fails the suite (DESIGN §8). */
async function requireRegistry(ci: boolean): Promise<boolean> {
  try {
    const res = await fetch(`http://${REGISTRY}/v2/`, { signal: AbortSignal.timeout(5000) });
    if (res.ok) return true;
    if (ci) throw new Error(`the registry at ${REGISTRY} answers ${res.status} (run scripts/ci/start-registry.sh)`);
  } catch (err) {
    if (ci) throw new Error(`image cache tests cannot run in CI: no registry at ${REGISTRY}: ${(err as Error).message}`);
  }
  return false;
}

/** The manifest digest of `name` in the registry, undefined when it has none. */
async function registryDigest(name: string): Promise<string | undefined> {
  const repo = name.slice(REGISTRY.length + 1, name.lastIndexOf(":"));
  const res = await fetch(`http://${REGISTRY}/v2/${repo}/manifests/latest`, {
    method: "HEAD",
    headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
  });
  return res.ok ? (res.headers.get("docker-content-digest") ?? undefined) : undefined;
}

describe("docker image cache (real registry and dockerd)", function () {
  const sandbox = dockerSandbox({
    prefix: "docker-cache",
    ci: Boolean(process.env.CI),
    host: process.env.DOCKER_HOST,
    alsoRequire: () => requireRegistry(Boolean(process.env.CI)),
  });
  const { agentLabel } = sandbox;
  let docker: Docker;
  let root: string;
  let seq = 0;
  const names = new Set<string>();
  beforeEach(() => {
    ({ docker, root } = sandbox);
  });

  after(async () => {
    if (!docker) return;
    // A committed image is the child of the cache image its run was pulled from: retry until both are gone.
    for (let round = 0; round < 5; round++) {
      const left = await cacheImages([...names]);
      if (left.length === 0) break;
      for (const image of left)
        await docker
          .getImage(image.Id)
          .remove({ force: true })
          .catch(() => undefined);
    }
  });

  /** Local images of the cache images `names`, by tag or by digest. */
  async function cacheImages(cacheNames: string[]): Promise<Docker.ImageInfo[]> {
    const repos = cacheNames.map((n) => n.slice(0, n.lastIndexOf(":")));
    return (await docker.listImages({ all: true })).filter((i) =>
      [...(i.RepoTags ?? []), ...(i.RepoDigests ?? [])].some((ref) =>
        repos.some((r) => ref.startsWith(`${r}:`) || ref.startsWith(`${r}@`)),
      ),
    );
  }

  /** A task of its own cache key: every run() with the same `key` shares one cache image. */
  function cacheKey(): { directory: string; name: string } {
    const directory = `cache-${process.pid}-${Date.now()}-${++seq}`;
    const name = cacheImageName(REGISTRY, TEST_IMAGE, "", directory);
    names.add(name);
    return { directory, name };
  }

  async function run(
    directory: string,
    spec: MessageInitShape<typeof TaskSpecSchema>,
  ): Promise<{ text: string; result: ExecutorResult }> {
    const output: Buffer[] = [];
    const taskId = `cache-task-${process.pid}-${++seq}`;
    const input: ExecutorInput = {
      taskId,
      attempt: 1,
      spec: create(TaskSpecSchema, { type: "docker", image: TEST_IMAGE, directory, cacheImage: true, ...spec }),
      environment: { MOTTAINAI_TASK_TOKEN: "secret-token" },
      workspaceRoot: join(root, "work"),
      onOutput: (chunk) => output.push(chunk),
      logger,
    };
    const executor = createDockerExecutor(input, { docker, agentLabel, imageCache: { registry: REGISTRY } });
    try {
      await executor.prepare();
      await executor.start();
      const result = await executor.wait();
      return { text: Buffer.concat(output).toString(), result };
    } finally {
      await executor.destroy();
    }
  }

  /** What the script printed: the output between the cache's "using"/"starting from" line and the commit. */
  function scriptOutput(text: string): string {
    const lines = text.split(/(?<=\n)/);
    const start = lines.findIndex((l) => /^Image cache: (using cached image|no cached image|cache_clean is set)/.test(l));
    const end = lines.findIndex((l, i) => i > start && l.startsWith("Image cache: committing"));
    return lines.slice(start + 1, end < 0 ? undefined : end).join("");
  }

  async function localImage(name: string): Promise<Docker.ImageInspectInfo | undefined> {
    try {
      return await docker.getImage(name).inspect();
    } catch {
      return undefined;
    }
  }

  async function removeLocal(name: string): Promise<void> {
    await docker.getImage(name).remove();
    assert.equal(await localImage(name), undefined, "the local cache image is gone");
  }

  it("pushes the committed container after success and starts the next run from the pulled cache", async () => {
    const { directory, name } = cacheKey();
    const first = await run(directory, { script: ["echo 'cached v1' > /cached-marker", "echo done"] });
    assert.deepEqual(first.result, { exitCode: 0 });
    assert.match(first.text, /Image cache: no cached image/);
    assert.equal(scriptOutput(first.text), "done\n");
    assert.match(first.text, new RegExp(`Image cache: pushed ${name.replace(/[.]/g, "\\.")}\n`));
    const repo = name.slice(REGISTRY.length + 1, name.lastIndexOf(":"));
    assert.ok(repo.startsWith(`${CACHE_REPOSITORY}/`));
    const tags = (await (await fetch(`http://${REGISTRY}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ["latest"]);

    const image = await localImage(name);
    assert.ok(image, "the committed image is on the engine");
    assert.ok(!(image.Config.Env ?? []).some((e) => e.includes("secret-token")), "no task variable is kept in the image");
    assert.deepEqual(image.Config.Labels?.[AGENT_LABEL] ?? "", "", "no agent label is kept in the image");
    await removeLocal(name);

    const second = await run(directory, { script: ['test -f /cached-marker && echo "seen: $(cat /cached-marker)"'] });
    assert.deepEqual(second.result, { exitCode: 0 });
    assert.match(second.text, /^Image cache: pulling .*\n/);
    assert.ok(second.text.includes(`Image cache: using cached image ${name}\n`), second.text);
    assert.equal(scriptOutput(second.text), "seen: cached v1\n");
  });

  it("cache_clean starts from the base image and replaces the cache", async () => {
    const { directory, name } = cacheKey();
    assert.deepEqual((await run(directory, { script: ["echo old > /cached-marker"] })).result, { exitCode: 0 });
    const before = await registryDigest(name);
    assert.ok(before);
    await removeLocal(name);

    const clean = await run(directory, {
      cacheClean: true,
      script: ["if [ -e /cached-marker ]; then echo stale; else echo fresh; fi", "echo new > /clean-marker"],
    });
    assert.deepEqual(clean.result, { exitCode: 0 });
    assert.doesNotMatch(clean.text, /Image cache: pulling/);
    assert.equal(scriptOutput(clean.text), "fresh\n");
    const after = await registryDigest(name);
    assert.ok(after && after !== before, "the cache image was replaced");
    await removeLocal(name);

    const next = await run(directory, { script: ["cat /clean-marker", "test ! -e /cached-marker && echo 'no old marker'"] });
    assert.equal(scriptOutput(next.text), "new\nno old marker\n");
  });

  it("a failing run does not update the cache", async () => {
    const { directory, name } = cacheKey();
    assert.deepEqual((await run(directory, { script: ["echo good > /cached-marker"] })).result, { exitCode: 0 });
    const before = await registryDigest(name);
    await removeLocal(name);

    const failing = await run(directory, { script: ["echo bad > /cached-marker", "exit 4"] });
    assert.deepEqual(failing.result, { exitCode: 4 });
    assert.doesNotMatch(failing.text, /Image cache: committing/);
    assert.equal(await registryDigest(name), before, "the registry still has the first image");
    await removeLocal(name);

    const next = await run(directory, { script: ["cat /cached-marker"] });
    assert.equal(scriptOutput(next.text), "good\n");
  });

  it("prune leaves no cache image and no dangling image behind, and keeps the base image", async () => {
    const { directory, name } = cacheKey();
    const dangling = async (): Promise<string[]> =>
      (await docker.listImages({ filters: { dangling: ["true"] } })).map((i) => i.Id).sort();
    const danglingBefore = await dangling();
    assert.deepEqual((await run(directory, { prune: true, script: ["echo one > /cached-marker"] })).result, { exitCode: 0 });
    assert.equal(await localImage(name), undefined, "no cache image after the first run");
    const second = await run(directory, { prune: true, script: ["cat /cached-marker", "echo two > /cached-marker"] });
    assert.ok(second.text.includes(`Image cache: using cached image ${name}\n`));
    assert.equal(scriptOutput(second.text), "one\n");
    assert.equal(await localImage(name), undefined, "no cache image after the second run");
    assert.deepEqual(await cacheImages([name]), [], "no image of the cache left, by tag or digest");
    assert.deepEqual(await dangling(), danglingBefore, "no dangling image left");
    assert.ok(await localImage(TEST_IMAGE), "the base image is kept");
    assert.ok(await registryDigest(name), "the cache stays in the registry");
  });
});

describe("docker image cache naming and agent options", () => {
  it("derives a stable name from image, source and directory", () => {
    const a = cacheImageName("127.0.0.1:5000", "busybox:latest", "https://example.org/r.git", "sub");
    assert.match(a, /^127\.0\.0\.1:5000\/mottainai-cache\/[0-9a-f]{24}:latest$/);
    assert.equal(cacheImageName("127.0.0.1:5000/", "busybox:latest", "https://example.org/r.git", "sub"), a);
    assert.notEqual(cacheImageName("127.0.0.1:5000", "busybox:latest", "https://example.org/r.git", "other"), a);
    assert.match(cacheImageName("reg.example:5000/ci", "busybox:latest", "", ""), /^reg\.example:5000\/ci\/mottainai-cache\//);
  });

  it("reads the registry and credentials from flags, environment and file", () => {
    const flags = loadAgentConfig(
      ["--docker-cache-registry", "127.0.0.1:5000/ci", "--docker-registry-username", "u", "--docker-registry-password", "p"],
      {},
    );
    assert.deepEqual(flags.dockerImageCache, { registry: "127.0.0.1:5000/ci", username: "u", password: "p" });
    const env = loadAgentConfig([], { MOTTAINAI_AGENT_DOCKER_CACHE_REGISTRY: "reg.example:5000" });
    assert.deepEqual(env.dockerImageCache, { registry: "reg.example:5000" });
    const dir = mkdtempSync(join(tmpdir(), "mottainai-cache-config-"));
    try {
      writeFileSync(
        join(dir, "agent.yaml"),
        "docker_cache_registry: 127.0.0.1:5000\ndocker_registry_username: u\ndocker_registry_password: p\n",
      );
      const file = loadAgentConfig(["--config", join(dir, "agent.yaml")], {});
      assert.deepEqual(file.dockerImageCache, { registry: "127.0.0.1:5000", username: "u", password: "p" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(loadAgentConfig([], {}).dockerImageCache, undefined);
    assert.throws(
      () => loadAgentConfig(["--docker-cache-registry", "http://x"], {}),
      /--docker-cache-registry: expected HOST:PORT/,
    );
    assert.throws(
      () => loadAgentConfig(["--docker-registry-username", "u"], {}),
      /--docker-registry-username: registry credentials need --docker-cache-registry/,
    );
  });
});
