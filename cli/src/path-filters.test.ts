import assert from "node:assert/strict";
import { UsageError } from "clipanion";
import { matchesPathFilters, parsePathFilters } from "./path-filters.js";

describe("path filters (-f REGEX)", () => {
  it("keeps every path without filters and any path one filter matches, also with the original's leading /", () => {
    const paths = ["pkgs/a.tbz2", "pkgs/b.txt", "iso/x.iso", "log.txt"];
    assert.deepEqual(
      paths.filter((p) => matchesPathFilters(p, [])),
      paths,
    );
    const filters = parsePathFilters(["\\.tbz2$", "^/iso/"]);
    assert.deepEqual(
      paths.filter((p) => matchesPathFilters(p, filters)),
      ["pkgs/a.tbz2", "iso/x.iso"],
    );
    assert.deepEqual(
      paths.filter((p) => matchesPathFilters(p, parsePathFilters(["^pkgs/"]))),
      ["pkgs/a.tbz2", "pkgs/b.txt"],
    );
  });

  it("refuses an invalid expression as a usage error naming it", () => {
    assert.throws(
      () => parsePathFilters(["ok", "("]),
      (error: unknown) =>
        error instanceof UsageError && error.message === 'invalid -f "(": Invalid regular expression: /(/: Unterminated group',
    );
  });
});
