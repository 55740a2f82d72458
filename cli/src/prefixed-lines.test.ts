import assert from "node:assert/strict";
import { createPrefixedLines } from "./prefixed-lines.js";

describe("createPrefixedLines", () => {
  const collect = () => {
    const parts: Buffer[] = [];
    const lines = createPrefixedLines(async (b) => void parts.push(Buffer.from(b)), "id | ");
    return { lines, text: () => Buffer.concat(parts).toString("utf8"), writes: () => parts.length };
  };

  it("prefixes every line, holding a partial line until it is complete or the end", async () => {
    const { lines, text, writes } = collect();
    await lines.write(Buffer.from("one\ntw"));
    assert.equal(text(), "id | one\n");
    await lines.write(Buffer.from("o"));
    assert.equal(writes(), 1, "nothing is written while no line is complete");
    await lines.write(Buffer.from("\n\nthr"));
    assert.equal(text(), "id | one\nid | two\nid | \n");
    await lines.end();
    assert.equal(text(), "id | one\nid | two\nid | \nid | thr\n");
  });

  it("keeps a UTF-8 character split across chunks and adds nothing at the end after a newline", async () => {
    const { lines, text } = collect();
    const bytes = Buffer.from("é\n");
    await lines.write(bytes.subarray(0, 1));
    await lines.write(bytes.subarray(1));
    await lines.end();
    assert.equal(text(), "id | é\n");
  });
});
