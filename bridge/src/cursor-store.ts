import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Where a bridge keeps the sequence of the last event it handled, so that a restarted bridge
 * resumes right after it. Contract: load() returns what the last completed save() stored (0
 * when nothing was saved); save() is called with increasing sequences, one at a time, and once
 * it resolves the value must survive a crash of the process (kill -9).
 */
export interface CursorStore {
  load(): Promise<bigint>;
  save(sequence: bigint): Promise<void>;
}

/** A CursorStore in memory: the default, for bridges that start from `initial` every time. */
export class MemoryCursorStore implements CursorStore {
  constructor(private sequence = 0n) {}

  async load(): Promise<bigint> {
    return this.sequence;
  }

  async save(sequence: bigint): Promise<void> {
    this.sequence = sequence;
  }
}

/**
 * A CursorStore in one small file (`{"sequence":"123"}`): each save writes a temporary file
 * beside it, fsyncs it and renames it over the old one, so that after a crash the file holds
 * either the old or the new cursor, never a torn one. A missing file reads as 0.
 */
export class FileCursorStore implements CursorStore {
  constructor(readonly path: string) {}

  async load(): Promise<bigint> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0n;
      throw err;
    }
    const parsed = JSON.parse(text) as { sequence?: unknown };
    if (typeof parsed.sequence !== "string" || !/^\d+$/.test(parsed.sequence)) {
      throw new Error(`${this.path}: not a bridge cursor file (expected {"sequence":"<number>"})`);
    }
    return BigInt(parsed.sequence);
  }

  async save(sequence: bigint): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const temp = `${this.path}.${randomBytes(4).toString("hex")}.tmp`;
    const file = await open(temp, "w", 0o600);
    try {
      await file.writeFile(JSON.stringify({ sequence: String(sequence) }));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, this.path);
  }
}
