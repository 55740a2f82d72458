import assert from "node:assert/strict";
import { rewriteOriginalFileFlags } from "./original-file-flags.js";

describe("rewriteOriginalFileFlags", () => {
  it("reads the original's --json FILE, -j FILE, --yaml FILE, -y FILE and --x=FILE as --file", () => {
    assert.deepEqual(rewriteOriginalFileFlags(["task", "create", "--json", "task.json"]), [
      "task",
      "create",
      "--file",
      "task.json",
    ]);
    assert.deepEqual(rewriteOriginalFileFlags(["task", "create", "-j", "t.json", "--monitor"]), [
      "task",
      "create",
      "--file",
      "t.json",
      "--monitor",
    ]);
    assert.deepEqual(rewriteOriginalFileFlags(["plan", "create", "--yaml", "p.yaml"]), ["plan", "create", "--file", "p.yaml"]);
    assert.deepEqual(rewriteOriginalFileFlags(["pipeline", "create", "-y", "p.yaml"]), [
      "pipeline",
      "create",
      "--file",
      "p.yaml",
    ]);
    assert.deepEqual(rewriteOriginalFileFlags(["task", "create", "--yaml=a b.yaml"]), ["task", "create", "--file", "a b.yaml"]);
  });

  it("keeps --json alone (print JSON) and every other command unchanged", () => {
    assert.deepEqual(rewriteOriginalFileFlags(["task", "create", "-f", "t.yaml", "--json"]), [
      "task",
      "create",
      "-f",
      "t.yaml",
      "--json",
    ]);
    assert.deepEqual(rewriteOriginalFileFlags(["task", "create", "--json", "-f", "t.yaml"]), [
      "task",
      "create",
      "--json",
      "-f",
      "t.yaml",
    ]);
    assert.deepEqual(rewriteOriginalFileFlags(["task", "create", "-j"]), ["task", "create", "--json"]);
    assert.deepEqual(rewriteOriginalFileFlags(["task", "show", "--json", "ID"]), ["task", "show", "--json", "ID"]);
  });
});
