import { EventEmitter } from "node:events";
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";

/**
 * Task logs as append-only files, one per task, under a directory of the data dir. Offsets are
 * byte offsets into the task's whole log. append() is synchronous, so concurrent callers cannot
 * interleave; it refuses any offset but the current size, which is how the agent protocol keeps
 * logs exact. Listeners of "append" receive the task id after every append.
 */
export class TaskLogStore extends EventEmitter<{ append: [taskId: string] }> {
  private readonly sizes = new Map<string, number>();

  constructor(private readonly dir: string) {
    super();
    this.setMaxListeners(0);
    mkdirSync(dir, { recursive: true });
  }

  /** Bytes stored for the task (0 when it has no log). */
  size(taskId: string): number {
    let size = this.sizes.get(taskId);
    if (size === undefined) {
      try {
        size = statSync(this.path(taskId)).size;
      } catch {
        size = 0;
      }
      this.sizes.set(taskId, size);
    }
    return size;
  }

  /** Appends data at offset, which must equal size(); returns the new size. */
  append(taskId: string, offset: number, data: Uint8Array): number {
    const size = this.size(taskId);
    if (offset !== size) throw new Error(`log append at ${offset} but ${taskId} has ${size} bytes`);
    const fd = openSync(this.path(taskId), "a");
    try {
      let written = 0;
      while (written < data.length) written += writeSync(fd, data, written, data.length - written);
    } finally {
      closeSync(fd);
    }
    this.sizes.set(taskId, size + data.length);
    this.emit("append", taskId);
    return size + data.length;
  }

  /** Reads up to maxBytes from offset; an empty buffer at or past the end. */
  read(taskId: string, offset: number, maxBytes: number): Buffer {
    const size = this.size(taskId);
    if (offset >= size) return Buffer.alloc(0);
    const length = Math.min(maxBytes, size - offset);
    const buffer = Buffer.allocUnsafe(length);
    const fd = openSync(this.path(taskId), "r");
    try {
      let read = 0;
      while (read < length) {
        const n = readSync(fd, buffer, read, length - read, offset + read);
        if (n === 0) break;
        read += n;
      }
      return buffer.subarray(0, read);
    } finally {
      closeSync(fd);
    }
  }

  /** Deletes the task's log. */
  remove(taskId: string): void {
    rmSync(this.path(taskId), { force: true });
    this.sizes.delete(taskId);
  }

  private path(taskId: string): string {
    return join(this.dir, `${taskId}.log`);
  }
}
