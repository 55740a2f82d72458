import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Bytes a LogBuffer keeps in memory before it spills to disk: 8 MiB. */
export const DEFAULT_LOG_MEMORY_LIMIT = 8 * 1024 * 1024;

const SEGMENT_BYTES = 64 * 1024;

/** Options of createLogBuffer. */
export interface LogBufferOptions {
  /** Directory for the spill file (created on the first spill), e.g. `<state-dir>/spill`. */
  spillDir: string;
  /** Unacknowledged bytes kept in memory before new bytes go to the spill file. Default 8 MiB. */
  memoryLimit?: number;
  /** Prefix of the spill file's name, such as the attempt's key; sanitised for the file system. */
  name?: string;
}

/** A range of log bytes starting at `offset` (bytes counted from 0 since the attempt began). */
export interface LogRange {
  offset: number;
  data: Buffer;
}

/**
 * The log of one attempt, addressed by byte offsets from 0, between the executor and the
 * stream (DESIGN §3.6). Three cursors: `acked` ≤ `sent` ≤ `size`. `append` adds at `size`;
 * `chunk` hands out the next unsent range and moves `sent`; `ack` moves `acked` and drops what
 * the server committed; `rewind` moves `sent` back so the range is sent again (after a
 * LogAck with resend or a reconnect). Bytes are only ever dropped after an ack.
 *
 * Memory is bounded: past `memoryLimit` unacknowledged bytes, new bytes go to a spill file and
 * are read back from it; once the server has caught up (the memory part is acked and what is
 * left fits in half the limit) the rest is loaded back and the file is deleted. File I/O is
 * synchronous (small, local, sequential). `dispose()` deletes the spill file; call it when the
 * attempt is forgotten. Not safe for use after dispose.
 */
export interface LogBuffer {
  /** Total bytes appended. */
  readonly size: number;
  /** Bytes the server acknowledged; everything before this offset is dropped. */
  readonly acked: number;
  /** Offset of the next byte `chunk` returns. */
  readonly sent: number;
  /** Bytes not yet handed out by `chunk` (size - sent). */
  readonly pending: number;
  /** Bytes handed out and not acknowledged (sent - acked). */
  readonly inFlight: number;
  /** Bytes held in memory now. */
  readonly memoryBytes: number;
  /** Whether a spill file is in use now. */
  readonly spilled: boolean;
  /** Appends bytes at offset `size` (copied). Throws if the spill file cannot be written. */
  append(bytes: Uint8Array): void;
  /** The next unsent range of at most `maxBytes` bytes, or undefined when nothing is pending. */
  chunk(maxBytes: number): LogRange | undefined;
  /** The server committed everything before `committedOffset`; lower values are ignored. */
  ack(committedOffset: number): void;
  /** Sends again from `committedOffset` (acked ≤ committedOffset ≤ size, else RangeError). */
  rewind(committedOffset: number): void;
  /** Releases memory and deletes the spill file. Idempotent. */
  dispose(): void;
}

interface Segment {
  buf: Buffer;
  len: number;
}

class SpillingLogBuffer implements LogBuffer {
  private readonly spillDir: string;
  private readonly memoryLimit: number;
  private readonly name: string;
  private segments: Segment[] = [];
  private memBase = 0;
  private memEnd = 0;
  private fd: number | undefined;
  private filePath: string | undefined;
  private fileBase = 0;
  private disposed = false;
  size = 0;
  acked = 0;
  sent = 0;

  constructor(options: LogBufferOptions) {
    this.spillDir = options.spillDir;
    this.memoryLimit = Math.max(1, options.memoryLimit ?? DEFAULT_LOG_MEMORY_LIMIT);
    this.name = (options.name ?? "log").replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 80);
  }

  get pending(): number {
    return this.size - this.sent;
  }

  get inFlight(): number {
    return this.sent - this.acked;
  }

  get memoryBytes(): number {
    return this.memEnd - this.memBase;
  }

  get spilled(): boolean {
    return this.fd !== undefined;
  }

  append(bytes: Uint8Array): void {
    this.assertOpen();
    if (bytes.length === 0) return;
    if (this.fd === undefined && this.memoryBytes + bytes.length > this.memoryLimit) this.startSpill();
    if (this.fd !== undefined) {
      writeFully(this.fd, bytes, this.size - this.fileBase);
    } else {
      this.appendToMemory(bytes);
    }
    this.size += bytes.length;
  }

  chunk(maxBytes: number): LogRange | undefined {
    this.assertOpen();
    if (!(maxBytes >= 1)) throw new RangeError(`chunk: maxBytes must be at least 1, got ${maxBytes}`);
    const n = Math.min(Math.floor(maxBytes), this.size - this.sent);
    if (n <= 0) return undefined;
    const offset = this.sent;
    const data = this.read(offset, offset + n);
    this.sent += n;
    return { offset, data };
  }

  ack(committedOffset: number): void {
    this.assertOpen();
    if (committedOffset > this.size) {
      throw new RangeError(`ack: committed offset ${committedOffset} is past the end of the log (${this.size} bytes)`);
    }
    if (committedOffset <= this.acked) return;
    this.acked = committedOffset;
    if (this.sent < this.acked) this.sent = this.acked;
    while (this.segments.length > 0) {
      const first = this.segments[0] as Segment;
      if (this.memBase + first.len > this.acked) break;
      this.segments.shift();
      this.memBase += first.len;
    }
    if (this.segments.length === 0 && this.fd === undefined) {
      this.memBase = this.memEnd = this.acked;
    }
    if (this.fd !== undefined && this.acked >= this.fileBase) {
      if (this.acked === this.size) {
        this.closeSpill();
        this.memBase = this.memEnd = this.size;
      } else if (this.size - this.acked <= this.memoryLimit / 2) {
        const rest = this.read(this.acked, this.size);
        this.closeSpill();
        this.segments = [];
        this.memBase = this.memEnd = this.acked;
        this.appendToMemory(rest);
      }
    }
  }

  rewind(committedOffset: number): void {
    this.assertOpen();
    if (committedOffset < this.acked) {
      throw new RangeError(
        `rewind: bytes before offset ${this.acked} were acknowledged and dropped, cannot resend from ${committedOffset}`,
      );
    }
    if (committedOffset > this.size) {
      throw new RangeError(`rewind: offset ${committedOffset} is past the end of the log (${this.size} bytes)`);
    }
    this.sent = committedOffset;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.segments = [];
    this.closeSpill();
  }

  private assertOpen(): void {
    if (this.disposed) throw new Error("log buffer was disposed");
  }

  private appendToMemory(bytes: Uint8Array): void {
    let pos = 0;
    const last = this.segments[this.segments.length - 1];
    if (last && last.len < last.buf.length) {
      const n = Math.min(last.buf.length - last.len, bytes.length);
      last.buf.set(bytes.subarray(0, n), last.len);
      last.len += n;
      pos = n;
    }
    while (pos < bytes.length) {
      const n = Math.min(SEGMENT_BYTES, bytes.length - pos);
      const buf = Buffer.allocUnsafe(SEGMENT_BYTES);
      buf.set(bytes.subarray(pos, pos + n), 0);
      this.segments.push({ buf, len: n });
      pos += n;
    }
    this.memEnd += bytes.length;
  }

  private startSpill(): void {
    mkdirSync(this.spillDir, { recursive: true, mode: 0o700 });
    const path = join(this.spillDir, `${this.name}-${randomBytes(6).toString("hex")}.spill`);
    this.fd = openSync(path, "wx+", 0o600);
    this.filePath = path;
    this.fileBase = this.size;
  }

  private closeSpill(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    const path = this.filePath as string;
    this.fd = undefined;
    this.filePath = undefined;
    closeSync(fd);
    try {
      unlinkSync(path);
    } catch {
      // Already gone: nothing to clean up.
    }
  }

  private read(start: number, end: number): Buffer {
    const out = Buffer.allocUnsafe(end - start);
    let pos = start;
    const memLimit = Math.min(end, this.memEnd);
    if (pos < memLimit) {
      let segStart = this.memBase;
      for (const seg of this.segments) {
        const segEnd = segStart + seg.len;
        if (segEnd > pos) {
          const to = Math.min(memLimit, segEnd);
          seg.buf.copy(out, pos - start, pos - segStart, to - segStart);
          pos = to;
          if (pos >= memLimit) break;
        }
        segStart = segEnd;
      }
    }
    if (pos < end) {
      if (this.fd === undefined || pos < this.fileBase) throw new Error(`log bytes ${pos}..${end} are not held`);
      readFully(this.fd, out, pos - start, end - pos, pos - this.fileBase);
    }
    return out;
  }
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}

function readFully(fd: number, out: Buffer, outOffset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, outOffset + done, length - done, position + done);
    if (n === 0) throw new Error(`spill file ended early at ${position + done}`);
    done += n;
  }
}

/** Creates an empty LogBuffer (size 0, nothing on disk until it spills). */
export function createLogBuffer(options: LogBufferOptions): LogBuffer {
  return new SpillingLogBuffer(options);
}
