import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { GroupCommit } from "./group-commit.js";

describe("GroupCommit", () => {
  let dir: string;
  let db: Database.Database;
  /** A second connection to the same file: it sees only committed rows. */
  let reader: Database.Database;
  let writes: GroupCommit;

  const insert = (id: number) => db.prepare("INSERT INTO items (id) VALUES (?)").run(id);
  const committed = () => (reader.prepare("SELECT id FROM items ORDER BY id").all() as { id: number }[]).map((r) => r.id);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "group-commit-"));
    db = new Database(join(dir, "db.sqlite"));
    db.pragma("journal_mode = WAL");
    db.pragma("foreign_keys = ON");
    db.exec(`CREATE TABLE items (id INTEGER PRIMARY KEY);
      CREATE TABLE parents (id INTEGER PRIMARY KEY);
      CREATE TABLE children (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED);`);
    reader = new Database(join(dir, "db.sqlite"), { readonly: true });
    writes = new GroupCommit(db);
  });

  afterEach(() => {
    writes.flush();
    reader.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("commits the writes of one turn together and resolves each only after the commit", async () => {
    const first = writes.write(() => insert(1).changes);
    const second = writes.write(() => insert(2).changes);
    assert.equal(db.inTransaction, true, "one transaction is open for the turn");
    assert.deepEqual(committed(), [], "nothing is visible to other connections before the commit");
    assert.deepEqual(
      (db.prepare("SELECT id FROM items ORDER BY id").all() as { id: number }[]).map((r) => r.id),
      [1, 2],
      "the writing connection reads its own turn",
    );
    assert.deepEqual(await Promise.all([first, second]), [1, 1]);
    assert.equal(db.inTransaction, false);
    assert.deepEqual(committed(), [1, 2]);
  });

  it("opens a new transaction for the next turn", async () => {
    await writes.write(() => insert(1));
    await writes.write(() => insert(2));
    assert.deepEqual(committed(), [1, 2]);
  });

  it("rolls back only the write that threw", async () => {
    const kept = writes.write(() => insert(1));
    const failed = writes.write(() => {
      insert(2);
      throw new Error("refused after its insert");
    });
    const alsoKept = writes.write(() => insert(3));
    await assert.rejects(failed, /refused after its insert/);
    await Promise.all([kept, alsoKept]);
    assert.deepEqual(committed(), [1, 3]);
  });

  it("rejects every write of the turn and keeps none of them when the commit fails", async () => {
    const innocent = writes.write(() => insert(1));
    // A deferred foreign key is checked only at COMMIT: this write succeeds, the commit does not.
    const dangling = writes.write(() => db.prepare("INSERT INTO children (id, parent) VALUES (1, 42)").run());
    await assert.rejects(innocent, /FOREIGN KEY constraint failed/);
    await assert.rejects(dangling, /FOREIGN KEY constraint failed/);
    assert.equal(db.inTransaction, false);
    assert.deepEqual(committed(), []);
    await writes.write(() => insert(2));
    assert.deepEqual(committed(), [2], "the next turn commits normally");
  });

  it("waits without blocking the event loop while another connection holds the write lock", async () => {
    const other = new Database(join(dir, "db.sqlite"));
    try {
      const otherWrites = new GroupCommit(other);
      const mine = writes.write(() => insert(1));
      // Same turn: this connection holds the lock, so the other one's write must wait for its commit.
      const theirs = otherWrites.write(() => other.prepare("INSERT INTO items (id) VALUES (2)").run());
      const after = otherWrites.write(() => other.prepare("INSERT INTO items (id) VALUES (3)").run());
      await Promise.all([mine, theirs, after]);
      assert.deepEqual(committed(), [1, 2, 3]);
    } finally {
      other.close();
    }
  });

  it("fails the waiting writes with SQLITE_BUSY after busy_timeout, and the event loop runs meanwhile", async () => {
    const holder = new Database(join(dir, "db.sqlite"));
    try {
      holder.exec("BEGIN IMMEDIATE");
      db.pragma("busy_timeout = 100");
      const impatient = new GroupCommit(db);
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const first = impatient.write(() => insert(1));
      const second = impatient.write(() => insert(2));
      await assert.rejects(first, (err: Error & { code?: string }) => err.code === "SQLITE_BUSY");
      await assert.rejects(second, (err: Error & { code?: string }) => err.code === "SQLITE_BUSY");
      clearInterval(ticker);
      assert.ok(ticks > 0, "timers ran while the writes waited");
      holder.exec("ROLLBACK");
      await impatient.write(() => insert(3));
      assert.deepEqual(committed(), [3]);
    } finally {
      holder.close();
    }
  });

  it("flush() commits the open turn at once", async () => {
    const pending = writes.write(() => insert(7));
    writes.flush();
    assert.deepEqual(committed(), [7]);
    await pending;
  });
});
