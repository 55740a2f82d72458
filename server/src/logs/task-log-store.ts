import { EventEmitter } from "node:events";
import {
  appendFileSync,
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { BlobStore } from "../blob/blob-store.js";
import type { LogSegmentStore } from "../store/log-segment-store.js";

/** Dependencies and limits of the task log store. */
export interface TaskLogStoreOptions {
  /** Directory of the live (unsealed) log files. */
  dir: string;
  segments: LogSegmentStore;
  blobs: BlobStore;
  logger: Logger;
  /** A live file is sealed into a blob once it reaches this size. Default 8 MiB. */
  segmentBytes?: number;
  /**
   * Other server processes append to and read the same logs (they share the metadata store and
   * the blob store; see SharedLogs). Default false.
   */
  shared?: boolean;
}

/** One contiguous piece of a task's log: a live file, or a sealed blob. */
interface Part {
  start: number;
  length: number;
  /** Set while the bytes are in a live file. */
  file?: string;
  /** Set once the bytes are in the blob store. */
  sha256?: string;
  /** No more appends go to this part (it is being, or has been, sealed). */
  closed: boolean;
}

interface LogState {
  parts: Part[];
  size: number;
  /** Chain of seal operations, in order. */
  sealing: Promise<void>;
}

/**
 * Task logs as chunked blobs. Bytes are appended to a live file per task (`<dir>/<task>/<start>`);
 * when it reaches segmentBytes, or when seal() is called at the end of an attempt, the file is
 * sealed: copied into the content-addressed blob store, indexed as a segment, then deleted.
 * Offsets are byte offsets into the task's whole log. append() refuses any offset but the
 * current size, which is how the agent protocol keeps logs exact. A crash between the steps of a
 * seal leaves either the file or the segment, and loading repairs it. Listeners of "append"
 * receive the task id after every append.
 */
export class TaskLogStore extends EventEmitter<{ append: [taskId: string] }> {
  private readonly states = new Map<string, Promise<LogState>>();
  private readonly segmentBytes: number;
  private readonly shared: SharedLogs | undefined;

  constructor(private readonly o: TaskLogStoreOptions) {
    super();
    this.setMaxListeners(0);
    this.segmentBytes = o.segmentBytes ?? 8 * 1024 * 1024;
    mkdirSync(o.dir, { recursive: true });
    if (o.shared) this.shared = new SharedLogs(o.segments, o.blobs);
  }

  /** Bytes stored for the task (0 when it has no log). */
  async size(taskId: string): Promise<number> {
    if (this.shared) return this.shared.size(taskId);
    return (await this.load(taskId)).size;
  }

  /** Appends data at offset, which must equal size(); returns the new size. */
  async append(taskId: string, offset: number, data: Uint8Array): Promise<number> {
    if (this.shared) {
      const size = await this.shared.append(taskId, offset, data);
      this.emit("append", taskId);
      return size;
    }
    const state = await this.load(taskId);
    if (offset !== state.size) throw new Error(`log append at ${offset} but ${taskId} has ${state.size} bytes`);
    let live = state.parts[state.parts.length - 1];
    if (!live || live.closed) {
      mkdirSync(join(this.o.dir, taskId), { recursive: true });
      live = { start: state.size, length: 0, file: join(this.o.dir, taskId, String(state.size)), closed: false };
      state.parts.push(live);
    }
    appendFileSync(live.file as string, data);
    live.length += data.length;
    state.size += data.length;
    this.emit("append", taskId);
    if (live.length >= this.segmentBytes) this.close(taskId, state, live);
    return state.size;
  }

  /** Reads up to maxBytes from offset (possibly fewer: one part at a time); empty at the end. */
  async read(taskId: string, offset: number, maxBytes: number): Promise<Buffer> {
    const parts = this.shared ? await this.shared.parts(taskId, offset) : (await this.load(taskId)).parts;
    const part = parts.find((p) => p.start <= offset && offset < p.start + p.length);
    if (!part) return Buffer.alloc(0);
    const from = offset - part.start;
    const length = Math.min(maxBytes, part.length - from);
    if (part.file) return readFileRange(part.file, from, length);
    const chunks: Buffer[] = [];
    let got = 0;
    const stream = await this.o.blobs.get(part.sha256 as string, from);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) break;
    }
    stream.destroy();
    return Buffer.concat(chunks).subarray(0, length);
  }

  /**
   * Seals the live file into a blob segment; resolves when every pending seal is done. The
   * task's state then leaves memory (it is reloaded from the segments when needed), so memory
   * holds only the logs of running tasks.
   */
  async seal(taskId: string): Promise<void> {
    if (this.shared) return;
    const entry = this.load(taskId);
    const state = await entry;
    const live = state.parts[state.parts.length - 1];
    if (live && !live.closed && live.length > 0) this.close(taskId, state, live);
    await state.sealing;
    if (state.parts.every((p) => !p.file) && this.states.get(taskId) === entry) this.states.delete(taskId);
  }

  /** Deletes the task's log: live files, segments, and blobs no other segment uses. */
  async remove(taskId: string): Promise<void> {
    if (this.shared) {
      this.shared.forget(taskId);
      for (const sha256 of await this.o.segments.deleteTask(taskId)) await this.o.blobs.delete(sha256);
      return;
    }
    const state = await this.load(taskId);
    await state.sealing;
    rmSync(join(this.o.dir, taskId), { recursive: true, force: true });
    for (const sha256 of await this.o.segments.deleteTask(taskId)) await this.o.blobs.delete(sha256);
    this.states.delete(taskId);
  }

  private load(taskId: string): Promise<LogState> {
    let state = this.states.get(taskId);
    if (!state) {
      state = this.loadFromDisk(taskId);
      this.states.set(taskId, state);
      state.catch(() => this.states.delete(taskId));
    }
    return state;
  }

  private async loadFromDisk(taskId: string): Promise<LogState> {
    const parts: Part[] = (await this.o.segments.list(taskId)).map((s) => ({
      start: s.start,
      length: s.length,
      sha256: s.sha256,
      closed: true,
    }));
    const state: LogState = { parts, size: 0, sealing: Promise.resolve() };
    const dir = join(this.o.dir, taskId);
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+$/.test(f)) : [];
    for (const name of files.sort((a, b) => Number(a) - Number(b))) {
      const file = join(this.o.dir, taskId, name);
      if (parts.some((p) => p.start === Number(name))) {
        rmSync(file, { force: true });
        continue;
      }
      parts.push({ start: Number(name), length: statSync(file).size, file, closed: false });
    }
    parts.sort((a, b) => a.start - b.start);
    for (const part of parts.slice(0, -1)) if (part.file) this.close(taskId, state, part);
    const last = parts[parts.length - 1];
    state.size = last ? last.start + last.length : 0;
    return state;
  }

  private close(taskId: string, state: LogState, part: Part): void {
    part.closed = true;
    state.sealing = state.sealing.then(async () => {
      try {
        const file = part.file as string;
        const info = await this.o.blobs.put(createReadStream(file));
        await this.o.segments.add({ taskId, start: part.start, length: part.length, sha256: info.sha256 });
        part.sha256 = info.sha256;
        delete part.file;
        await rm(file, { force: true });
      } catch (err) {
        this.o.logger.error({ err, taskId, start: part.start }, "sealing a log segment failed; the live file is kept");
      }
    });
  }
}

/** Most tasks whose segment lists SharedLogs keeps. */
const SHARED_CACHE_TASKS = 1000;

/**
 * Task logs that several servers append to and read: an agent whose server died continues its
 * log on another server at the committed offset, so what a server acknowledged must already be
 * where every server finds it. Each append is stored as a sealed segment (a blob in the shared
 * blob store, indexed in the shared segment store) before it returns; nothing lives in a local
 * file. Segments are immutable and contiguous, so each task's list is kept and only the segments
 * past its end are read (listFrom): size() and append() always ask the store for those, read()
 * only when asked past the known end. One task's appends are serialized within the process;
 * across processes only the server holding the attempt's lease appends (the scheduler's fencing).
 */
class SharedLogs {
  private readonly cache = new Map<string, Part[]>();
  private readonly appending = new Map<string, Promise<unknown>>();

  constructor(
    private readonly segments: LogSegmentStore,
    private readonly blobs: BlobStore,
  ) {}

  async size(taskId: string): Promise<number> {
    return end(await this.refresh(taskId));
  }

  append(taskId: string, offset: number, data: Uint8Array): Promise<number> {
    const previous = this.appending.get(taskId) ?? Promise.resolve();
    const result = previous.then(async () => {
      const size = await this.size(taskId);
      if (offset !== size) throw new Error(`log append at ${offset} but ${taskId} has ${size} bytes`);
      if (data.length === 0) return size;
      const info = await this.blobs.put([Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
      await this.segments.add({ taskId, start: offset, length: data.length, sha256: info.sha256 });
      return size + data.length;
    });
    const tail = result.catch(() => undefined);
    this.appending.set(taskId, tail);
    void tail.then(() => {
      if (this.appending.get(taskId) === tail) this.appending.delete(taskId);
    });
    return result;
  }

  /** The task's parts, refreshed when offset lies past the known ones. */
  async parts(taskId: string, offset: number): Promise<Part[]> {
    const known = this.cache.get(taskId);
    if (known && offset < end(known)) return known;
    return this.refresh(taskId);
  }

  forget(taskId: string): void {
    this.cache.delete(taskId);
  }

  /** Adds the segments past the known end (concurrent refreshes add each once). */
  private async refresh(taskId: string): Promise<Part[]> {
    let parts = this.cache.get(taskId);
    if (!parts) {
      if (this.cache.size >= SHARED_CACHE_TASKS) this.cache.clear();
      parts = [];
      this.cache.set(taskId, parts);
    }
    for (const s of await this.segments.listFrom(taskId, end(parts))) {
      if (s.start === end(parts)) parts.push({ start: s.start, length: s.length, sha256: s.sha256, closed: true });
    }
    return parts;
  }
}

const end = (parts: Part[]): number => {
  const last = parts[parts.length - 1];
  return last ? last.start + last.length : 0;
};

function readFileRange(file: string, from: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  const fd = openSync(file, "r");
  try {
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, from + read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}
