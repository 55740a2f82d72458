import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pino } from "pino";
import { createDockerExecutor } from "./docker-executor.js";
import type { Executor, ExecutorInput, ExecutorResult } from "./executor.js";
import { GroupProcess } from "./group-process.js";
import { createHostExecutor, DEFAULT_PATH, workspaceName } from "./host-executor.js";
import { dockerSandbox, TEST_IMAGE } from "./require-docker.js";
import { checkoutSource, checkoutSshCommand } from "./source-checkout.js";
import { requireSshGitServer, SSH_REPO_README, type SshGitServer } from "./ssh-git-server.js";

const logger = pino({ level: "silent" });
const PATH = process.env.PATH ?? DEFAULT_PATH;
const CI = Boolean(process.env.CI);

/** Files under `dir` (recursively) whose content includes `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile() && readFileSync(path).includes(needle)) found.push(path);
  }
  return found;
}

/** The base64 body line of an OpenSSH private key: what must never be left in a workspace. */
function keyBody(privateKey: string): string {
  const line = privateKey.split("\n").find((l) => l !== "" && !l.startsWith("-----"));
  assert.ok(line !== undefined && line.length > 20);
  return line;
}

describe("private (ssh) checkouts against a real sshd", function () {
  let server: SshGitServer;
  let root: string;
  let seq = 0;

  before(async function () {
    const started = await requireSshGitServer(CI);
    if (!started) this.skip();
    server = started;
  });
  after(async () => {
    await server?.stop();
  });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mottainai-ssh-checkout-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const failureContext = (): string => `sshd log:\n${server.log()}`;

  describe("checkoutSource", () => {
    it("clones with the key in a 0600 file outside the workspace, never prompting, and removes the key", async () => {
      const workspace = join(root, "ws");
      const keyFile = join(root, "ws.key");
      mkdirSync(workspace);
      const seen: { key: boolean; mode?: number; env?: Record<string, string> }[] = [];
      const output: Buffer[] = [];
      await checkoutSource({
        spec: { source: server.url, commit: server.commit, privkey: server.privateKey.trimEnd() },
        workspace,
        keyFile,
        env: { PATH, HOME: workspace, LANG: "C.UTF-8" },
        run: (argv, cwd, env) => {
          seen.push({ key: existsSync(keyFile), mode: existsSync(keyFile) ? statSync(keyFile).mode & 0o777 : undefined, env });
          return new GroupProcess(argv, cwd, env, (c) => output.push(c), 2000, join(root, "ws.pgid")).done;
        },
      });
      assert.equal(readFileSync(join(workspace, "README"), "utf8"), SSH_REPO_README, failureContext());
      assert.equal(Buffer.concat(output).toString(), "", "git and ssh print nothing (no host key warning, no prompt)");
      assert.equal(seen.length, 2, "clone and checkout");
      for (const s of seen) {
        assert.equal(s.key, true, "the key file exists while git runs");
        assert.equal(s.mode, 0o600);
        assert.equal(s.env?.GIT_SSH_COMMAND, checkoutSshCommand(keyFile));
        assert.equal(s.env?.GIT_TERMINAL_PROMPT, "0");
      }
      assert.ok(relative(workspace, keyFile).startsWith(".."), "the key file is outside the workspace");
      for (const option of [
        `-i '${keyFile}'`,
        "IdentitiesOnly=yes",
        "StrictHostKeyChecking=accept-new",
        "UserKnownHostsFile=/dev/null",
        "BatchMode=yes",
      ])
        assert.ok(checkoutSshCommand(keyFile).includes(option), option);
      assert.equal(existsSync(keyFile), false, "the key file is removed");
      assert.deepEqual(filesContaining(workspace, keyBody(server.privateKey)), []);
    });

    it("removes the key file also when the clone fails", async () => {
      const workspace = join(root, "ws");
      const keyFile = join(root, "ws.key");
      mkdirSync(workspace);
      const url = server.url.replace(/repo\.git$/, "missing.git");
      await assert.rejects(
        checkoutSource({
          spec: { source: url, commit: "", privkey: server.privateKey },
          workspace,
          keyFile,
          env: { PATH, HOME: workspace },
          run: (argv, cwd, env) => new GroupProcess(argv, cwd, env, () => undefined, 2000, join(root, "ws.pgid")).done,
        }),
        (err: Error) => err.message.startsWith(`source: cloning ${url} failed (exit code `),
      );
      assert.equal(existsSync(keyFile), false);
    });
  });

  /** Runs a task through an executor's lifecycle; between prepare and start, checks that no key is left. */
  async function runTask(
    make: (input: ExecutorInput) => Executor,
    type: string,
    spec: MessageInitShape<typeof TaskSpecSchema>,
    workspaceRoot: string,
  ): Promise<{ text: string; result: ExecutorResult }> {
    const output: Buffer[] = [];
    const taskId = `ssh-task-${process.pid}-${++seq}`;
    const workspace = join(workspaceRoot, workspaceName(taskId, 1));
    const executor = make({
      taskId,
      attempt: 1,
      spec: create(TaskSpecSchema, { type, ...spec }),
      environment: {},
      workspaceRoot,
      onOutput: (chunk) => output.push(chunk),
      logger,
    });
    try {
      await executor.prepare();
      assert.deepEqual(
        readdirSync(workspaceRoot).filter((name) => name.endsWith(".key")),
        [],
        "no key file is left next to the workspace once prepared",
      );
      assert.deepEqual(filesContaining(workspace, keyBody(server.privateKey)), [], "the key is nowhere in the workspace");
      await executor.start();
      const result = await executor.wait();
      return { text: Buffer.concat(output).toString(), result };
    } finally {
      await executor.destroy();
      assert.deepEqual(
        (existsSync(workspaceRoot) ? readdirSync(workspaceRoot) : []).filter((name) => name.startsWith(workspaceName(taskId, 1))),
        [],
        "neither the workspace nor a key file is left",
      );
    }
  }

  describe("host executor", () => {
    const host = (input: ExecutorInput) => createHostExecutor(input, { path: PATH });

    it("checks out the repository with `privkey`; the script sees the exact committed README", async () => {
      const { text, result } = await runTask(
        host,
        "host",
        { source: server.url, privkey: server.privateKey, script: ["cat README"] },
        join(root, "work"),
      );
      assert.deepEqual(result, { exitCode: 0 }, `${text}\n${failureContext()}`);
      assert.equal(text, SSH_REPO_README);
    });

    it("without `privkey` the task fails at setup with an error naming `source`, without prompting", async () => {
      await assert.rejects(
        runTask(host, "host", { source: server.url, script: ["cat README"] }, join(root, "work")),
        (err: Error) => err.message.startsWith(`source: cloning ${server.url} failed (exit code `),
      );
    });
  });

  describe("docker executor (real dockerd)", () => {
    const sandbox = dockerSandbox({ prefix: "docker-ssh", ci: CI, host: process.env.DOCKER_HOST });
    const docker = (input: ExecutorInput) =>
      createDockerExecutor(input, { docker: sandbox.docker, agentLabel: sandbox.agentLabel, path: PATH });

    it("checks out the repository with `privkey` on the agent; the container sees the exact committed README", async () => {
      const { text, result } = await runTask(
        docker,
        "docker",
        { image: TEST_IMAGE, source: server.url, privkey: server.privateKey, script: ["cat README"] },
        join(sandbox.root, "work"),
      );
      assert.deepEqual(result, { exitCode: 0 }, `${text}\n${failureContext()}`);
      assert.equal(text, SSH_REPO_README);
    });

    it("without `privkey` the task fails at setup with an error naming `source`", async () => {
      await assert.rejects(
        runTask(docker, "docker", { image: TEST_IMAGE, source: server.url, script: ["cat README"] }, join(sandbox.root, "work")),
        (err: Error) => err.message.startsWith(`source: cloning ${server.url} failed (exit code `),
      );
    });
  });
});
