import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { selectArtefacts, walkArtefacts } from "./artefact-uploader.js";

describe("artefact uploader", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mottainai-artefacts-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("walks regular files with relative paths, sorted, skipping symbolic links", async () => {
    mkdirSync(join(dir, "pkgs/sub"), { recursive: true });
    writeFileSync(join(dir, "pkgs/sub/b"), "b");
    writeFileSync(join(dir, "a"), "a");
    symlinkSync("/etc/passwd", join(dir, "leak"));
    const skipped: string[] = [];
    const files = await walkArtefacts(dir, (p) => skipped.push(p));
    assert.deepEqual(
      files.map((f) => f.path),
      ["a", "pkgs/sub/b"],
    );
    assert.deepEqual(skipped, ["leak"]);
  });

  it("refuses a file name the server would refuse, naming it", async () => {
    writeFileSync(join(dir, "bad\u0001name"), "x");
    await assert.rejects(walkArtefacts(dir), /artefact "bad\\u0001name": a path must not contain control characters/);
  });

  it("applies artefact_push_filters as the original: any unanchored match keeps a file; none keeps all", () => {
    const files = [{ path: "pkgs/a.tbz2" }, { path: "pkgs/a.tbz2.sig" }, { path: "logs/build.log" }];
    assert.deepEqual(selectArtefacts(files, []), files);
    assert.deepEqual(
      selectArtefacts(files, ["tbz2$"]).map((f) => f.path),
      ["pkgs/a.tbz2"],
    );
    assert.deepEqual(
      selectArtefacts(files, ["tbz2", "^logs/"]).map((f) => f.path),
      ["pkgs/a.tbz2", "pkgs/a.tbz2.sig", "logs/build.log"],
    );
    assert.throws(() => selectArtefacts(files, ["["]), /^Error: artefact_push_filters\[0\]: /);
  });
});
