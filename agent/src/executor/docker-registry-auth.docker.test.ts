import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import { pino } from "pino";
import { createDockerExecutor, type DockerExecutorOptions } from "./docker-executor.js";
import { cacheImageName } from "./docker-image-cache.js";
import { readDockerAuthFile, type DockerRegistryAuth } from "./docker-registry-auth.js";
import type { ExecutorInput, ExecutorResult } from "./executor.js";
import { workspaceName } from "./host-executor.js";
import { dockerSandbox, TEST_IMAGE } from "./require-docker.js";

const logger = pino({ level: "silent" });
/** The registry scripts/ci/start-auth-registry.sh starts, and the file it writes its test user to. */
const REGISTRY = process.env.MOTTAINAI_TEST_AUTH_REGISTRY ?? "127.0.0.1:5001";
const CREDENTIALS = join(process.env.MOTTAINAI_TEST_AUTH_REGISTRY_DIR ?? "/tmp/mottainai-registry-auth", "credentials");

interface Credentials {
  username: string;
  password: string;
}

/**
 * The test user of the authenticated registry, after checking that the registry refuses
 * anonymous requests and accepts that user; undefined (skip) when it is not running, and in CI
 * an error instead (DESIGN §8).
 */
async function requireAuthRegistry(ci: boolean): Promise<Credentials | undefined> {
  let problem: string;
  try {
    const text = readFileSync(CREDENTIALS, "utf8").trim();
    const colon = text.indexOf(":");
    const credentials = { username: text.slice(0, colon), password: text.slice(colon + 1) };
    const anonymous = await fetch(`http://${REGISTRY}/v2/`, { signal: AbortSignal.timeout(5000) });
    const basic = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
    const authenticated = await fetch(`http://${REGISTRY}/v2/`, {
      headers: { Authorization: basic },
      signal: AbortSignal.timeout(5000),
    });
    if (anonymous.status === 401 && authenticated.ok) return credentials;
    problem = `the registry at ${REGISTRY} answers ${anonymous.status} anonymously and ${authenticated.status} with the test user (expected 401 and 200)`;
  } catch (err) {
    problem = `no authenticated registry at ${REGISTRY} (${(err as Error).message})`;
  }
  if (ci) throw new Error(`private registry tests cannot run in CI: ${problem}; run scripts/ci/start-auth-registry.sh`);
  return undefined;
}

function follow(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: string | undefined;
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : failure !== undefined ? reject(new Error(failure)) : resolve()),
      (event: { error?: string }) => {
        failure ??= event.error;
      },
    );
  });
}

describe("docker executor: private registry (real dockerd and authenticated registry)", function () {
  let credentials: Credentials | undefined;
  const sandbox = dockerSandbox({
    prefix: "docker-auth",
    ci: Boolean(process.env.CI),
    host: process.env.DOCKER_HOST,
    alsoRequire: async () => {
      credentials = await requireAuthRegistry(Boolean(process.env.CI));
      return credentials !== undefined;
    },
  });
  const { agentLabel } = sandbox;
  const unique = `${process.pid}-${Date.now()}`;
  const repository = `${REGISTRY}/mottainai-test/private`;
  const image = `${repository}:${unique}`;
  const cacheNames: string[] = [];
  let seq = 0;
  let registryAuth: DockerRegistryAuth;

  /** Writes a Docker config.json for the registry into the case's root and reads it as the agent does. */
  function authFile(username: string, password: string): DockerRegistryAuth {
    const path = join(sandbox.root, `docker-config-${++seq}.json`);
    const auth = Buffer.from(`${username}:${password}`).toString("base64");
    writeFileSync(path, JSON.stringify({ auths: { [REGISTRY]: { auth } } }), { mode: 0o600 });
    return readDockerAuthFile(path);
  }

  async function removeLocal(name: string): Promise<void> {
    try {
      await sandbox.docker.getImage(name).remove({ force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  before(async () => {
    if (!credentials) return;
    const { docker } = sandbox;
    const authconfig = { ...credentials, serveraddress: REGISTRY };
    await docker.getImage(TEST_IMAGE).tag({ repo: repository, tag: unique });
    await follow(docker, await docker.getImage(repository).push({ tag: unique, authconfig }));
    await removeLocal(image);
  });

  beforeEach(async () => {
    if (credentials) registryAuth = authFile(credentials.username, credentials.password);
    await removeLocal(image);
  });

  after(async () => {
    if (!credentials) return;
    // A committed cache image is the child of the one its run pulled (kept by digest): retry until all are gone.
    const repos = [image, ...cacheNames].map((n) => n.slice(0, n.lastIndexOf(":")));
    for (let round = 0; round < 5; round++) {
      const left = (await sandbox.docker.listImages({ all: true })).filter((i) =>
        [...(i.RepoTags ?? []), ...(i.RepoDigests ?? [])].some((ref) =>
          repos.some((r) => ref.startsWith(`${r}:`) || ref.startsWith(`${r}@`)),
        ),
      );
      if (left.length === 0) break;
      for (const i of left) await removeLocal(i.Id).catch(() => undefined);
    }
  });

  async function run(
    spec: MessageInitShape<typeof TaskSpecSchema>,
    options: DockerExecutorOptions,
  ): Promise<{ text: string; result: ExecutorResult }> {
    const output: Buffer[] = [];
    const taskId = `auth-task-${unique}-${++seq}`;
    const input: ExecutorInput = {
      taskId,
      attempt: 1,
      spec: create(TaskSpecSchema, { type: "docker", image, ...spec }),
      environment: {},
      workspaceRoot: join(sandbox.root, "work"),
      onOutput: (chunk) => output.push(chunk),
      logger,
    };
    const executor = createDockerExecutor(input, { docker: sandbox.docker, agentLabel, ...options });
    try {
      await executor.prepare();
      await executor.start();
      const result = await executor.wait();
      return { text: Buffer.concat(output).toString(), result };
    } finally {
      await executor.destroy();
      await sandbox.assertGone(taskId, join(sandbox.root, "work", workspaceName(taskId, 1)));
    }
  }

  it("pulls a task's private image with the credentials of the auth file and runs it", async () => {
    const { text, result } = await run({ script: ["echo private image ok"] }, { registryAuth });
    assert.deepEqual(result, { exitCode: 0 });
    assert.ok(text.startsWith(`Pulling image ${image}\n`), text);
    assert.ok(text.includes(`Status: Downloaded newer image for ${image}\n`), text);
    assert.ok(text.endsWith("private image ok\n"), text);
    assert.ok(await sandbox.docker.getImage(image).inspect(), "the pulled image is on the engine");
  });

  it("without credentials, or with a wrong password, the task fails naming the image that cannot be pulled", async () => {
    const prefix = `image: "${image}" is not on this agent's engine and cannot be pulled: `;
    for (const options of [{}, { registryAuth: authFile(credentials?.username ?? "", "wrong-password") }]) {
      await assert.rejects(
        run({ script: ["echo never"] }, options),
        (err: Error) => {
          assert.ok(err.message.startsWith(prefix), err.message);
          assert.match(err.message.slice(prefix.length), /unauthorized|no basic auth credentials|authentication required/);
          return true;
        },
        JSON.stringify(Object.keys(options)),
      );
    }
  });

  it("the image cache pushes to an authenticated cache registry with the auth file's credentials", async () => {
    const directory = `auth-cache-${unique}`;
    const cacheName = cacheImageName(REGISTRY, TEST_IMAGE, "", directory);
    cacheNames.push(cacheName);
    const imageCache = { registry: REGISTRY };
    const spec = { image: TEST_IMAGE, directory, cacheImage: true, script: ["echo cached > /auth-cache-marker"] };

    const anonymous = await run(spec, { imageCache, registryAuth: authFile(credentials?.username ?? "", "wrong-password") });
    assert.deepEqual(anonymous.result, { exitCode: 0 }, "a cache failure does not fail the task");
    assert.ok(
      anonymous.text.includes(`Image cache: saving ${cacheName} failed (the task result is unaffected): `),
      anonymous.text,
    );
    await removeLocal(cacheName);

    const authenticated = await run(spec, { imageCache, registryAuth });
    assert.deepEqual(authenticated.result, { exitCode: 0 });
    assert.ok(authenticated.text.includes(`Image cache: pushed ${cacheName}\n`), authenticated.text);
    await removeLocal(cacheName);

    const cached = await run({ ...spec, script: ["cat /auth-cache-marker"] }, { imageCache, registryAuth });
    assert.ok(cached.text.includes(`Image cache: using cached image ${cacheName}\n`), cached.text);
    assert.ok(cached.text.includes("cached\n"), cached.text);
  });
});
