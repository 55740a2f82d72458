import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadFiles, downloadResumable, hashedLocalFiles, localFiles, localTarget, uploadMessages } from "./file-transfer.js";

describe("CLI file transfers", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mottainai-cli-files-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const data = Buffer.from("0123456789".repeat(1000));
  const sha256 = createHash("sha256").update(data).digest("hex");
  const server = (offsets: number[]) => (offset: number) => {
    offsets.push(offset);
    return (async function* () {
      for (let i = offset; i < data.length; i += 3000) yield { offset: BigInt(i), chunk: data.subarray(i, i + 3000) };
    })();
  };

  it("downloads a file, resumes a partial one from its size, and skips a complete one", async () => {
    const dest = join(dir, "a/b.bin");
    const offsets: number[] = [];
    await downloadResumable({ dest, size: data.length, sha256, open: server(offsets) });
    assert.deepEqual(readFileSync(dest), data);
    writeFileSync(dest, data.subarray(0, 4321));
    await downloadResumable({ dest, size: data.length, sha256, open: server(offsets) });
    assert.deepEqual(readFileSync(dest), data);
    assert.equal(await downloadResumable({ dest, size: data.length, sha256, open: server(offsets) }), 0);
    assert.deepEqual(offsets, [0, 4321]);
  });

  it("removes a file whose bytes do not match and says to run again", async () => {
    const dest = join(dir, "c.bin");
    writeFileSync(dest, "not the prefix");
    await assert.rejects(downloadResumable({ dest, size: data.length, sha256, open: server([]) }), /do not match/);
    assert.throws(() => readFileSync(dest));
    await downloadResumable({ dest, size: data.length, sha256, open: server([]) });
    assert.deepEqual(readFileSync(dest), data);
  });

  it("maps local files and trees to remote paths, and remote paths into a directory safely", async () => {
    mkdirSync(join(dir, "tree/sub"), { recursive: true });
    writeFileSync(join(dir, "tree/sub/x"), "x");
    writeFileSync(join(dir, "tree/y"), "y");
    assert.deepEqual(
      (await localFiles(join(dir, "tree"), "")).map((f) => f.path),
      ["sub/x", "y"],
    );
    assert.deepEqual(
      (await localFiles(join(dir, "tree/y"), "pre/")).map((f) => f.path),
      ["pre/y"],
    );
    assert.equal(localTarget("/out", "a/b"), "/out/a/b");
    assert.throws(() => localTarget("/out", "../x"));
  });

  const noProgress = { progress: () => ({ advance() {}, done() {} }) };

  it("hashes local files and sends an upload as its header, then its bytes", async () => {
    writeFileSync(join(dir, "d.bin"), data);
    const [file, ...rest] = await hashedLocalFiles([join(dir, "d.bin")], "up");
    assert.deepEqual(rest, []);
    assert.deepEqual(
      { path: file?.path, size: file?.size, sha256: file?.sha256 },
      { path: "up/d.bin", size: data.length, sha256 },
    );
    const messages = [];
    for await (const m of uploadMessages({ id: "s1" }, file!)) messages.push(m);
    assert.deepEqual(messages[0], { message: { case: "header", value: { id: "s1" } } });
    assert.deepEqual(Buffer.concat(messages.slice(1).map((m) => m.message.value as Uint8Array)), data);
  });

  it("downloads every listed file, or only the one --path names, and says when it names none", async () => {
    const listed = [
      { path: "x/a.bin", size: BigInt(data.length), sha256 },
      { path: "b.bin", size: BigInt(data.length), sha256 },
    ];
    const opened: string[] = [];
    const open = (f: (typeof listed)[number], offset: number) => {
      opened.push(f.path);
      return server([])(offset);
    };
    await downloadFiles(noProgress, { listed, onlyPath: undefined, missing: "", to: join(dir, "all"), open });
    assert.deepEqual(readFileSync(join(dir, "all/x/a.bin")), data);
    assert.deepEqual(readFileSync(join(dir, "all/b.bin")), data);
    await downloadFiles(noProgress, { listed, onlyPath: "b.bin", missing: "", to: join(dir, "one"), open });
    assert.deepEqual(opened, ["x/a.bin", "b.bin", "b.bin"]);
    await assert.rejects(
      downloadFiles(noProgress, { listed, onlyPath: "x", missing: "storage s has no file x", to: dir, open }),
      /^Error: storage s has no file x$/,
    );
  });
});
