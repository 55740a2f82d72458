import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalBlobStore } from "../blob/local-blob-store.js";
import { putRevision, readTree, testJob } from "./delivery-fixture.js";
import { createGitDeliverer } from "./git-deliverer.js";
import { runCommand } from "./run-command.js";

const REVISION_1 = {
  "README.md": "# repo\n",
  "packages/a-1.0.tar": "a".repeat(50_000),
  ".gitignore": "*.tar\n",
};
const REVISION_2 = {
  "README.md": "# repo, updated\n",
  "packages/b-2.0.tar": "b",
};

describe("git deliverer", function () {
  let root: string;
  let blobs: LocalBlobStore;
  let workDir: string;
  let bare: string;

  const git = (args: string[], cwd?: string) => runCommand("git", args, { cwd, timeoutMs: 60_000 });

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), "mottainai-git-test-"));
    blobs = new LocalBlobStore(join(root, "blobs"));
    workDir = join(root, "work");
    await mkdir(workDir);
    bare = join(root, "published.git");
    await git(["init", "-q", "--bare", bare]);
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  const deliver = async (files: Record<string, string>, revision: number, branch = "main") =>
    createGitDeliverer({ workDir, timeoutMs: 60_000 }).deliver(
      testJob(blobs, { kind: "git", target: bare, branch }, await putRevision(blobs, files), revision),
    );

  const clone = async (branch: string) => {
    const dir = join(root, `clone-${Date.now()}-${Math.random()}`);
    await git(["clone", "-q", "--branch", branch, bare, dir]);
    return dir;
  };

  it("pushes one commit per delivered revision to an empty bare repository; each tree is exactly the revision", async () => {
    await deliver(REVISION_1, 1);
    let dir = await clone("main");
    assert.deepEqual(await readTree(dir), REVISION_1, "the .gitignore in the revision hides nothing");
    await deliver(REVISION_2, 2);
    await deliver(REVISION_2, 3); // same content: still a commit of its own
    dir = await clone("main");
    assert.deepEqual(await readTree(dir), REVISION_2);
    const log = (await git(["log", "--format=%an <%ae>|%cn <%ce>|%s|%b", "main"], dir)).trim().split("\n").filter(Boolean);
    assert.deepEqual(
      log.map((line) => line.split("|").slice(0, 3)),
      [
        ["Mottainai <mottainai@localhost>", "Mottainai <mottainai@localhost>", "repo: revision 3"],
        ["Mottainai <mottainai@localhost>", "Mottainai <mottainai@localhost>", "repo: revision 2"],
        ["Mottainai <mottainai@localhost>", "Mottainai <mottainai@localhost>", "repo: revision 1"],
      ],
    );
    assert.match(log[0]!, /Tag "latest" of namespace repo moved to revision 3; delivered by Mottainai \(delivery d3\)\./);
    const first = (await git(["rev-list", "--max-parents=0", "main"], dir)).trim().split("\n");
    assert.equal(first.length, 1, "one root commit: each delivery builds on the branch");
    assert.deepEqual(await readTree(workDir), {}, "no work tree is left");
  });

  it("pushes to a branch of its own next to the existing ones", async () => {
    await deliver(REVISION_1, 1, "main");
    await deliver(REVISION_2, 2, "releases/stable");
    assert.deepEqual(await readTree(await clone("main")), REVISION_1);
    assert.deepEqual(await readTree(await clone("releases/stable")), REVISION_2);
  });

  it("fails with git's own words when the repository does not exist, and refuses paths inside .git", async () => {
    await assert.rejects(
      createGitDeliverer({ workDir, timeoutMs: 60_000 }).deliver(
        testJob(
          blobs,
          { kind: "git", target: join(root, "missing.git"), branch: "main" },
          await putRevision(blobs, REVISION_1),
          1,
        ),
      ),
      /git ls-remote exited with code \d+: .*(does not appear to be a git repository|not found)/s,
    );
    await assert.rejects(deliver({ ".git/hooks/post-checkout": "#!/bin/sh\n" }, 1), /a path inside \.git cannot be delivered/);
    assert.deepEqual(await readTree(workDir), {});
  });
});
