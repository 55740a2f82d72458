import type { Database, Statement } from "better-sqlite3";

interface Write {
  fn: () => unknown;
  resolve: (result: unknown) => void;
  reject: (err: unknown) => void;
}

/** A write that ran in the open transaction, settled at its commit. */
interface Ran {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Longest pause between two tries for a write lock another connection holds. */
const MAX_RETRY_MS = 20;

const isBusy = (err: unknown) => (err as { code?: string }).code?.startsWith("SQLITE_BUSY") === true;

/**
 * Group commit for one SQLite connection: the writes made during one turn of the event loop share
 * one transaction, committed when the turn ends (setImmediate), and each write's promise settles
 * only after that commit. Under load a commit costs more than the statements it commits (WAL
 * frames for every page touched, each index included), and the tasks, events and attempts that
 * one turn writes share pages; one commit per turn instead of one per write raised throughput
 * created → done by about 14 % and cost about 0.35 ms of dispatch latency (docs/benchmarks.md).
 *
 * Contract of write(fn): fn runs inside a savepoint of the turn's transaction, at once and
 * synchronously when this connection can take the write lock (always, unless another connection
 * to the file writes). If fn throws, only its own changes are rolled back and the promise rejects
 * with its error; the turn's other writes are unaffected. If the COMMIT fails, the whole turn is
 * rolled back and every write of it rejects. A resolved write is committed, so durability is what
 * it was with one transaction per write (WAL, synchronous=NORMAL). Reads on this connection see
 * the turn's writes before they commit (they are this process's own); other connections see
 * them only after.
 *
 * While another connection holds the write lock, writes wait in call order and the lock is tried
 * again after a short pause, without blocking the event loop (the connection's busy_timeout,
 * which would block it, is switched off while the lock is taken); after busy_timeout ms without
 * the lock the waiting writes fail with SQLITE_BUSY.
 *
 * flush() commits at once; the store calls it before closing the connection. Every write of a
 * store must go through write(): a statement run outside it while a turn is open would join the
 * turn's transaction without waiting for its commit.
 */
export class GroupCommit {
  /** The writes in the open transaction; undefined while none is open. */
  private turn: Ran[] | undefined;
  /** Writes waiting for the write lock, in call order. */
  private waiting: Write[] = [];
  private busySince = 0;
  private readonly busyTimeoutMs: number;
  private readonly noBusyTimeout: Statement;
  private readonly busyTimeout: Statement;
  private readonly begin: Statement;
  private readonly commit: Statement;

  constructor(private readonly db: Database) {
    this.busyTimeoutMs = db.pragma("busy_timeout", { simple: true }) as number;
    this.noBusyTimeout = db.prepare("PRAGMA busy_timeout = 0");
    this.busyTimeout = db.prepare(`PRAGMA busy_timeout = ${this.busyTimeoutMs}`);
    this.begin = db.prepare("BEGIN IMMEDIATE");
    this.commit = db.prepare("COMMIT");
  }

  write<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const write: Write = { fn, resolve: resolve as (result: unknown) => void, reject };
      if (this.waiting.length > 0) {
        this.waiting.push(write);
      } else if (this.turn || this.open()) {
        this.run(write);
      } else {
        this.busySince = Date.now();
        this.waiting.push(write);
        setTimeout(() => this.retry(1), 1);
      }
    });
  }

  /** Commits the open turn, if any, and settles its writes. */
  flush(): void {
    const turn = this.turn;
    if (!turn) return;
    this.turn = undefined;
    try {
      this.commit.run();
    } catch (err) {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      for (const ran of turn) ran.reject(err);
      return;
    }
    for (const ran of turn) ran.resolve();
  }

  /** Opens the turn's transaction; false when another connection holds the write lock. */
  private open(): boolean {
    this.noBusyTimeout.get();
    try {
      this.begin.run();
    } catch (err) {
      if (isBusy(err)) return false;
      throw err;
    } finally {
      this.busyTimeout.get();
    }
    this.turn = [];
    setImmediate(() => this.flush());
    return true;
  }

  private run(write: Write): void {
    let result: unknown;
    try {
      result = this.db.transaction(write.fn)();
    } catch (err) {
      write.reject(err);
      return;
    }
    this.turn?.push({ resolve: () => write.resolve(result), reject: write.reject });
  }

  private retry(pauseMs: number): void {
    const waiting = this.waiting;
    let began: boolean;
    try {
      began = this.turn !== undefined || this.open();
    } catch (err) {
      this.waiting = [];
      for (const write of waiting) write.reject(err);
      return;
    }
    if (began) {
      this.waiting = [];
      for (const write of waiting) this.run(write);
    } else if (Date.now() - this.busySince >= this.busyTimeoutMs) {
      this.waiting = [];
      const err = Object.assign(new Error("database is locked (another connection held the write lock)"), {
        code: "SQLITE_BUSY",
      });
      for (const write of waiting) write.reject(err);
    } else {
      const next = Math.min(pauseMs * 2, MAX_RETRY_MS);
      setTimeout(() => this.retry(next), pauseMs);
    }
  }
}
