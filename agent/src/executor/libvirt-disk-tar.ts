import { constants, createWriteStream } from "node:fs";
import { copyFile, lstat, mkdir, open, readdir, readlink, rm, symlink } from "node:fs/promises";
import { dirname, join, posix, resolve } from "node:path";

const BLOCK = 512;
const MAX_OCTAL_SIZE = 0o77777777777;

/** One member of a tar written by writeTar: `source` on this machine stored as `name`. */
export interface TarSource {
  /** Member name, relative, "/"-separated; a directory's members follow it. */
  name: string;
  /** File or directory to store; a directory is stored with everything under it. */
  path?: string;
  /** Bytes to store as a regular file instead of `path`. */
  content?: Buffer;
  /** Mode of a `content` member. Default 0o644. */
  mode?: number;
}

function field(header: Buffer, offset: number, length: number, value: string): void {
  header.write(value, offset, length, "utf8");
}

function octal(header: Buffer, offset: number, length: number, value: number): void {
  if (value > MAX_OCTAL_SIZE && length === 12) {
    // GNU base-256: the high bit of the first byte set, the number big-endian in the rest.
    header[offset] = 0x80;
    let v = BigInt(value);
    for (let i = offset + length - 1; i > offset; i--) {
      header[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return;
  }
  field(header, offset, length - 1, value.toString(8).padStart(length - 1, "0"));
}

function header(name: string, type: string, size: number, mode: number, linkname = ""): Buffer {
  const h = Buffer.alloc(BLOCK);
  field(h, 0, 100, name);
  octal(h, 100, 8, mode & 0o7777);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, Math.floor(Date.now() / 1000));
  h.fill(0x20, 148, 156);
  field(h, 156, 1, type);
  field(h, 157, 100, linkname);
  field(h, 257, 6, "ustar");
  field(h, 263, 2, "00");
  field(h, 265, 32, "root");
  field(h, 297, 32, "root");
  let sum = 0;
  for (const byte of h) sum += byte;
  field(h, 148, 7, `${sum.toString(8).padStart(6, "0")}\0`);
  return h;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/**
 * Writes a tar (ustar with GNU long-name members, as busybox and GNU tar read them) of
 * `sources` to `file`, padded with zeros to a multiple of `align` bytes (default 4096), so that
 * the file is a raw disk whose bytes are the archive. Stores regular files, directories and
 * symbolic links with their permission bits, owner root; skips sockets, fifos and devices.
 * Resolves with the file's size.
 */
export async function writeTar(file: string, sources: readonly TarSource[], align = 4096): Promise<number> {
  const out = createWriteStream(file, { mode: 0o644 });
  let written = 0;
  const write = (chunk: Buffer): Promise<void> | undefined => {
    written += chunk.length;
    if (out.write(chunk)) return undefined;
    return new Promise<void>((resolveDrain, rejectDrain) => {
      out.once("drain", resolveDrain);
      out.once("error", rejectDrain);
    });
  };
  const put = async (chunk: Buffer): Promise<void> => {
    const pending = write(chunk);
    if (pending) await pending;
  };
  const entry = async (name: string, type: string, size: number, mode: number, linkname = ""): Promise<void> => {
    if (Buffer.byteLength(linkname) > 99) {
      const long = Buffer.from(`${linkname}\0`);
      await put(header("././@LongLink", "K", long.length, 0));
      await put(Buffer.concat([long, padding(long.length)]));
    }
    if (Buffer.byteLength(name) > 99) {
      const long = Buffer.from(`${name}\0`);
      await put(header("././@LongLink", "L", long.length, 0));
      await put(Buffer.concat([long, padding(long.length)]));
    }
    await put(header(name.slice(0, 99), type, size, mode, linkname.slice(0, 99)));
  };
  const addPath = async (name: string, path: string): Promise<void> => {
    const st = await lstat(path);
    if (st.isDirectory()) {
      await entry(`${name}/`, "5", 0, st.mode);
      for (const child of (await readdir(path)).sort()) await addPath(`${name}/${child}`, join(path, child));
    } else if (st.isSymbolicLink()) {
      await entry(name, "2", 0, 0o777, await readlink(path));
    } else if (st.isFile()) {
      await entry(name, "0", st.size, st.mode);
      const handle = await open(path, "r");
      try {
        let left = st.size;
        while (left > 0) {
          const buf = Buffer.alloc(Math.min(left, 1 << 20));
          const { bytesRead } = await handle.read(buf, 0, buf.length, null);
          // A file that shrank meanwhile is padded with zeros to the size in its header.
          if (bytesRead === 0) buf.fill(0);
          const chunk = bytesRead === 0 ? buf : buf.subarray(0, bytesRead);
          await put(chunk);
          left -= chunk.length;
        }
      } finally {
        await handle.close();
      }
      await put(padding(st.size));
    }
  };
  const done = new Promise<void>((resolveDone, rejectDone) => {
    out.once("close", resolveDone);
    out.once("error", rejectDone);
  });
  try {
    for (const source of sources) {
      if (source.content !== undefined) {
        await entry(source.name, "0", source.content.length, source.mode ?? 0o644);
        await put(Buffer.concat([source.content, padding(source.content.length)]));
      } else if (source.path !== undefined) {
        await addPath(source.name.replace(/\/+$/, ""), source.path);
      }
    }
    await put(Buffer.alloc(2 * BLOCK));
    const rest = (align - (written % align)) % align;
    if (rest > 0) await put(Buffer.alloc(rest));
  } finally {
    out.end();
  }
  await done;
  return written;
}

/** Reads exact byte counts from a stream of chunks. */
class ChunkReader {
  private pending: Buffer[] = [];
  private buffered = 0;
  private readonly iterator: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Up to `n` bytes (fewer only at the end of the stream), as they arrive, at most `n` in all. */
  async take(n: number, onChunk: (chunk: Buffer) => Promise<void> | void): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0) {
        const next = await this.iterator.next();
        if (next.done) break;
        this.pending.push(next.value);
        this.buffered += next.value.length;
        continue;
      }
      const head = this.pending[0] as Buffer;
      const part = head.length <= left ? head : head.subarray(0, left);
      if (part === head) this.pending.shift();
      else this.pending[0] = head.subarray(left);
      this.buffered -= part.length;
      left -= part.length;
      await onChunk(part);
    }
    return n - left;
  }

  async read(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    await this.take(n, (chunk) => {
      parts.push(chunk);
    });
    return Buffer.concat(parts);
  }

  async skip(n: number): Promise<void> {
    await this.take(n, () => undefined);
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

function readString(h: Buffer, offset: number, length: number): string {
  const raw = h.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString("utf8");
}

function readNumber(h: Buffer, offset: number, length: number): number {
  const first = h[offset] as number;
  if (first & 0x80) {
    let v = 0n;
    for (let i = offset + 1; i < offset + length; i++) v = (v << 8n) | BigInt(h[i] as number);
    return Number(v);
  }
  const text = readString(h, offset, length).trim();
  return text === "" ? 0 : parseInt(text, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number(data.subarray(pos, space).toString());
    if (!Number.isInteger(len) || len <= 0) break;
    const record = data.subarray(space + 1, pos + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** The archive member name made safe: relative, no `..`, no empty name; undefined for the root itself. */
function safeName(name: string): string | undefined {
  if (name.includes("\0")) throw new Error(`member "${name}" has a NUL in its name`);
  const normal = posix.normalize(name.replace(/^(\.\/)+/, ""));
  const trimmed = normal.replace(/\/+$/, "");
  if (trimmed === "" || trimmed === ".") return undefined;
  if (posix.isAbsolute(trimmed) || trimmed === ".." || trimmed.startsWith("../"))
    throw new Error(`member "${name}" leaves the directory`);
  return trimmed;
}

/**
 * Extracts a tar from `source` (chunks of the archive, which may be followed by anything: the
 * first zero block ends it) into the existing directory `dir`. Made for archives a guest
 * wrote, which are not trusted: member names are kept inside `dir` (absolute names and `..`
 * are refused), nothing is written through a symbolic link the archive created, owners are
 * not restored, only permission bits (no set-id bits). Understands ustar, GNU long names and
 * pax path/linkpath/size records; hard links are copied; other member types are skipped.
 * Rejects with a message naming the member that could not be extracted.
 */
export async function extractTar(source: AsyncIterable<Buffer>, dir: string): Promise<void> {
  const root = resolve(dir);
  const reader = new ChunkReader(source);
  const symlinks = new Set<string>();
  const underSymlink = (name: string): boolean => {
    for (let p = posix.dirname(name); p !== "." && p !== "/"; p = posix.dirname(p)) if (symlinks.has(p)) return true;
    return false;
  };
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  try {
    for (;;) {
      const h = await reader.read(BLOCK);
      if (h.length < BLOCK || h.every((b) => b === 0)) return;
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
      if (sum !== readNumber(h, 148, 8)) throw new Error("the archive is corrupt (bad header checksum)");
      const type = String.fromCharCode(h[156] as number);
      let size = readNumber(h, 124, 12);
      const paddedSize = (s: number): number => s + ((BLOCK - (s % BLOCK)) % BLOCK);
      if (type === "L" || type === "K" || type === "x" || type === "g") {
        const data = await reader.read(paddedSize(size));
        const value = data.subarray(0, size);
        if (type === "L") longName = readString(value, 0, value.length);
        else if (type === "K") longLink = readString(value, 0, value.length);
        else if (type === "x") pax = parsePax(value);
        continue;
      }
      const prefix = readString(h, 345, 155);
      const rawName = pax.path ?? longName ?? (prefix !== "" ? `${prefix}/${readString(h, 0, 100)}` : readString(h, 0, 100));
      const linkName = pax.linkpath ?? longLink ?? readString(h, 157, 100);
      if (pax.size !== undefined) size = Number(pax.size);
      longName = undefined;
      longLink = undefined;
      pax = {};
      const mode = readNumber(h, 100, 8) & 0o777;
      const name = safeName(rawName);
      if (name !== undefined && underSymlink(name)) throw new Error(`member "${rawName}" is under a symbolic link`);
      const target = name === undefined ? root : join(root, name);
      if (type === "5") {
        if (name !== undefined) await mkdir(target, { recursive: true, mode: mode | 0o700 });
        await reader.skip(paddedSize(size));
        continue;
      }
      if (name === undefined) {
        await reader.skip(paddedSize(size));
        continue;
      }
      if (type === "0" || type === "\0" || type === "7") {
        await mkdir(dirname(target), { recursive: true });
        await rm(target, { force: true, recursive: true });
        symlinks.delete(name);
        const handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
        try {
          await reader.take(size, async (chunk) => {
            await handle.write(chunk);
          });
        } finally {
          await handle.close();
        }
        await reader.skip(paddedSize(size) - size);
      } else if (type === "2") {
        await mkdir(dirname(target), { recursive: true });
        await rm(target, { force: true, recursive: true });
        await symlink(linkName, target);
        symlinks.add(name);
        await reader.skip(paddedSize(size));
      } else if (type === "1") {
        const from = safeName(linkName);
        if (from === undefined || underSymlink(from) || symlinks.has(from))
          throw new Error(`member "${rawName}" links to "${linkName}", which is not a file of the archive`);
        await mkdir(dirname(target), { recursive: true });
        await rm(target, { force: true, recursive: true });
        await copyFile(join(root, from), target, constants.COPYFILE_EXCL);
        await reader.skip(paddedSize(size));
      } else {
        await reader.skip(paddedSize(size));
      }
    }
  } finally {
    await reader.close();
  }
}
