import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { appendFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filterPaths, makeReadOnly, releaseReadOnly } from "./task-inputs.js";
import { downloadVerified, targetPath } from "./file-transfer.js";
import { createHash } from "node:crypto";

describe("task inputs", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mottainai-inputs-"));
  });
  afterEach(async () => {
    await releaseReadOnly(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it("filters paths with unanchored regular expressions, keeping all without filters", () => {
    const files = [{ path: "pkgs/a.tbz2" }, { path: "pkgs/a.tbz2.sig" }, { path: "docs/README" }];
    assert.deepEqual(filterPaths(files, []), files);
    assert.deepEqual(
      filterPaths(files, ["\\.tbz2$", "^docs/"]).map((f) => f.path),
      ["pkgs/a.tbz2", "docs/README"],
    );
    assert.throws(() => filterPaths(files, ["("]), /^Error: namespace_filters\[0\]: /);
  });

  it("makes a storage tree read-only (writes and new files fail) and removable again after release", async () => {
    const storage = join(dir, "storage");
    mkdirSync(join(storage, "sub"), { recursive: true });
    writeFileSync(join(storage, "sub/a"), "a");
    await makeReadOnly(storage);
    assert.equal(statSync(join(storage, "sub/a")).mode & 0o777, 0o444);
    assert.equal(statSync(join(storage, "sub")).mode & 0o777, 0o555);
    await assert.rejects(appendFile(join(storage, "sub/a"), "more"));
    await assert.rejects(writeFile(join(storage, "new"), "x"));
    assert.equal(readFileSync(join(storage, "sub/a"), "utf8"), "a");
    await releaseReadOnly(storage);
    await rm(storage, { recursive: true });
  });

  it("keeps a download only when its size and sha256 match", async () => {
    const data = Buffer.from("hello world");
    const sha256 = createHash("sha256").update(data).digest("hex");
    const stream = async function* (bytes: Buffer) {
      yield { offset: 0n, chunk: bytes.subarray(0, 5) };
      yield { offset: 5n, chunk: bytes.subarray(5) };
    };
    const dest = join(dir, "x/y.txt");
    await downloadVerified(stream(data), dest, { sha256, size: data.length }, "f");
    assert.equal(readFileSync(dest, "utf8"), "hello world");
    const other = join(dir, "z.txt");
    await assert.rejects(
      downloadVerified(stream(Buffer.from("hello WORLD")), other, { sha256, size: data.length }, "f"),
      /sha256 mismatch/,
    );
    assert.throws(() => statSync(other));
    assert.throws(() => statSync(`${other}.part`));
  });

  it("refuses listed paths that would leave the target directory", () => {
    assert.equal(targetPath("/t", "a//b", "f"), "/t/a/b");
    for (const bad of ["../x", "/etc/passwd", "a/../../x", ""]) assert.throws(() => targetPath("/t", bad, "f"), /^\w*Error: f: /);
  });
});
