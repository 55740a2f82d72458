import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extractTar, writeTar } from "./libvirt-disk-tar.js";

describe("libvirt disk tar", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mottainai-disk-tar-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const longName = `${"d".repeat(80)}/${"f".repeat(120)}.txt`;

  function sampleTree(root: string): void {
    mkdirSync(join(root, "sub", "deeper"), { recursive: true });
    writeFileSync(join(root, "sub", "bin.dat"), Buffer.from([0, 1, 2, 255, 10, 13]));
    writeFileSync(join(root, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
    mkdirSync(join(root, "d".repeat(80)), { recursive: true });
    writeFileSync(join(root, longName), "long");
    symlinkSync("sub/bin.dat", join(root, "link"));
    writeFileSync(join(root, "empty"), "");
  }

  it("writes a raw disk whose bytes GNU tar reads, aligned to 4096 bytes", async () => {
    const src = join(dir, "src");
    sampleTree(src);
    const disk = join(dir, "disk.tar");
    const size = await writeTar(disk, [
      { name: "mottainai/run", content: Buffer.from("x"), mode: 0o755 },
      { name: "mottainai/workspace", path: src },
    ]);
    assert.equal(size % 4096, 0);
    assert.equal(statSync(disk).size, size);
    const out = join(dir, "out");
    mkdirSync(out);
    execFileSync("tar", ["-x", "-f", disk, "-C", out]);
    assert.equal(readFileSync(join(out, "mottainai/run"), "utf8"), "x");
    assert.deepEqual(readFileSync(join(out, "mottainai/workspace/sub/bin.dat")), Buffer.from([0, 1, 2, 255, 10, 13]));
    assert.equal(readFileSync(join(out, "mottainai/workspace", longName), "utf8"), "long");
    assert.equal(readlinkSync(join(out, "mottainai/workspace/link")), "sub/bin.dat");
    assert.equal(statSync(join(out, "mottainai/workspace/run.sh")).mode & 0o777, 0o755);
    assert.ok(statSync(join(out, "mottainai/workspace/sub/deeper")).isDirectory());
  });

  it("extracts what GNU tar and busybox tar write, followed by zeros, and what writeTar writes", async () => {
    const src = join(dir, "src");
    sampleTree(src);
    const archives: string[] = [];
    execFileSync("tar", ["-c", "-f", join(dir, "gnu.tar"), "-C", src, "."]);
    archives.push(join(dir, "gnu.tar"));
    try {
      execFileSync("busybox", ["tar", "-c", "-f", join(dir, "busybox.tar"), "-C", src, "."]);
      archives.push(join(dir, "busybox.tar"));
    } catch {
      // No busybox on this machine.
    }
    await writeTar(join(dir, "ours.tar"), [{ name: ".", path: src }]);
    archives.push(join(dir, "ours.tar"));
    for (const archive of archives) {
      // A sparse tail, as on the output disk.
      execFileSync("truncate", ["-s", "+1M", archive]);
      const out = join(dir, `x-${archives.indexOf(archive)}`);
      mkdirSync(out);
      await extractTar(createReadStream(archive), out);
      assert.deepEqual(readFileSync(join(out, "sub/bin.dat")), Buffer.from([0, 1, 2, 255, 10, 13]), archive);
      assert.equal(readFileSync(join(out, longName), "utf8"), "long", archive);
      assert.equal(readlinkSync(join(out, "link")), "sub/bin.dat", archive);
      assert.equal(statSync(join(out, "run.sh")).mode & 0o777, 0o755, archive);
      assert.equal(readFileSync(join(out, "empty"), "utf8"), "", archive);
    }
  });

  it("refuses members that leave the directory or go through a symbolic link of the archive", async () => {
    const outside = join(dir, "outside");
    mkdirSync(outside);
    const evil = join(dir, "evil");
    mkdirSync(join(evil, "ln"), { recursive: true });
    writeFileSync(join(evil, "ln", "passwd"), "owned");
    // GNU tar stores "esc" as a symlink to the outside, then "esc/passwd" through it.
    const parts = join(dir, "parts");
    mkdirSync(parts);
    symlinkSync(outside, join(parts, "esc"));
    execFileSync("tar", ["-c", "-f", join(dir, "a.tar"), "-C", parts, "esc"]);
    mkdirSync(join(dir, "p2", "esc"), { recursive: true });
    writeFileSync(join(dir, "p2", "esc", "passwd"), "owned");
    execFileSync("tar", ["-r", "-f", join(dir, "a.tar"), "-C", join(dir, "p2"), "esc/passwd"]);
    const out = join(dir, "out");
    mkdirSync(out);
    await assert.rejects(extractTar(createReadStream(join(dir, "a.tar")), out), /esc\/passwd" is under a symbolic link/);
    assert.throws(() => statSync(join(outside, "passwd")));

    execFileSync("tar", ["-c", "-f", join(dir, "b.tar"), "-P", "-C", evil, "--transform", "s,^ln,../../ln,", "ln/passwd"]);
    await assert.rejects(extractTar(createReadStream(join(dir, "b.tar")), out), /leaves the directory/);
  });
});
