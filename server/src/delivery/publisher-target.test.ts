import assert from "node:assert/strict";
import { checkGitBranch, checkPublisherTarget, PublisherTargetError } from "./publisher-target.js";
import { CommandError, runCommand } from "./run-command.js";

describe("publisher targets", () => {
  it("accepts paths and rsync daemon URLs for rsync, saying which are on the server's disk", () => {
    assert.deepEqual(checkPublisherTarget("rsync", "/srv/mirror/repo"), { target: "/srv/mirror/repo", local: true });
    assert.deepEqual(checkPublisherTarget("rsync", "rsync://mirror.example.org:8873/repo/amd64"), {
      target: "rsync://mirror.example.org:8873/repo/amd64",
      local: false,
    });
    assert.equal(checkPublisherTarget("rsync", "rsync://backup@mirror.example.org/repo").local, false);
  });

  it("accepts git URLs, scp-like addresses and paths; file:// and paths are local", () => {
    for (const [target, local] of [
      ["https://git.example.org/site.git", false],
      ["ssh://git@git.example.org:2222/site.git", false],
      ["git://git.example.org/site.git", false],
      ["git@github.com:org/site.git", false],
      ["/srv/git/site.git", true],
      ["file:///srv/git/site.git", true],
    ] as const) {
      assert.deepEqual(checkPublisherTarget("git", target), { target, local }, target);
    }
  });

  it("refuses everything else with the field named", () => {
    for (const [kind, target] of [
      ["rsync", ""],
      ["rsync", "relative/dir"],
      ["rsync", "--rsh=evil"],
      ["rsync", "host:/path"],
      ["rsync", "/srv/../etc"],
      ["rsync", "rsync://host"],
      ["rsync", "rsync://host/module/../../x"],
      ["rsync", "rsync://u:secret@host/module"],
      ["rsync", "https://host/module"],
      ["rsync", "/srv/a\nb"],
      ["git", "ext::sh -c touch% /tmp/x"],
      ["git", "fd::17"],
      ["git", "-uhelp"],
      ["git", "git@host:-oProxyCommand=x"],
      ["git", "https://user:token@host/x.git"],
      ["git", "relative.git"],
    ] as const) {
      assert.throws(() => checkPublisherTarget(kind, target), PublisherTargetError, `${kind} ${target}`);
      assert.throws(() => checkPublisherTarget(kind, target), /^PublisherTargetError: target: /);
    }
  });

  it("checks git branch names", () => {
    for (const ok of ["main", "gh-pages", "releases/2025.1", "feature_x"]) assert.equal(checkGitBranch(ok), ok);
    for (const bad of ["", "-f", "/main", "main/", "a..b", "x.lock", "a//b", ".hidden", "a/.b", "with space", "a~1", "a:b"]) {
      assert.throws(() => checkGitBranch(bad), /^PublisherTargetError: branch: /, bad);
    }
  });
});

describe("runCommand", () => {
  it("resolves to stdout and rejects with the exit code and the last lines of stderr", async () => {
    assert.equal(await runCommand("sh", ["-c", "echo out"], { timeoutMs: 10_000 }), "out\n");
    await assert.rejects(
      runCommand("sh", ["-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i >&2; done; exit 3"], {
        timeoutMs: 10_000,
        label: "demo",
      }),
      (err: CommandError) => {
        assert.ok(err instanceof CommandError);
        assert.equal(err.message.split("\n")[0], "demo exited with code 3: line 3");
        assert.equal(err.output.split("\n").length, 8);
        return true;
      },
    );
    await assert.rejects(runCommand("/no/such/binary", [], { timeoutMs: 10_000 }), /could not run \(ENOENT\)/);
  });

  it("kills the command and what it started when the timeout passes or the signal aborts", async () => {
    await assert.rejects(
      runCommand("sh", ["-c", "sleep 30 & wait"], { timeoutMs: 100, label: "sleeper" }),
      /^CommandError: sleeper timed out after 100 ms/,
    );
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    await assert.rejects(runCommand("sleep", ["30"], { timeoutMs: 10_000, signal: abort.signal }), /sleep was cancelled/);
  });

  it("gives the command no terminal to prompt on", async () => {
    await assert.rejects(runCommand("sh", ["-c", "exec 3</dev/tty"], { timeoutMs: 10_000 }), /exited with code/);
  });
});
