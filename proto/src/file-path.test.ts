import assert from "node:assert/strict";
import { FilePathError, normalizeFilePath, validateResourceName } from "./file-path.js";

describe("normalizeFilePath", () => {
  it("normalises separators and dot segments", () => {
    assert.equal(normalizeFilePath("a//b/./c", "path"), "a/b/c");
    assert.equal(normalizeFilePath("pkg/x-1.0.tar.gz", "path"), "pkg/x-1.0.tar.gz");
    assert.equal(normalizeFilePath("dir/", "path"), "dir");
  });

  for (const [path, why] of [
    ["", "path: a path is required"],
    ["/etc/passwd", "path: a path must be relative, not absolute"],
    ["a/../../b", 'path: a path must not contain ".."'],
    ["..", 'path: a path must not contain ".."'],
    ["a\0b", "path: a path must not contain NUL"],
    ["a\nb", "path: a path must not contain control characters"],
    ["a\\b", 'path: a path uses "/" as its separator, not "\\"'],
    ["./.", "path: a path must name a file"],
    ["x".repeat(4097), "path: a path is at most 4096 bytes"],
  ] as const) {
    it(`refuses ${JSON.stringify(path.slice(0, 20))}`, () => {
      assert.throws(
        () => normalizeFilePath(path, "path"),
        (err: unknown) => err instanceof FilePathError && err.message === `${why}, got ${JSON.stringify(path)}`,
      );
    });
  }
});

describe("validateResourceName", () => {
  it("accepts names and refuses others naming the field", () => {
    assert.equal(validateResourceName("repo.sabayon_1-x", "name"), "repo.sabayon_1-x");
    for (const bad of ["", ".hidden", "-x", "a/b", "a b", "x".repeat(129)]) {
      assert.throws(() => validateResourceName(bad, "name"), /^FilePathError: name: expected 1 to 128 letters/);
    }
  });
});
