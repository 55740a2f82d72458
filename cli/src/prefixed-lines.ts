/** A writer of a byte stream that starts every line with a prefix; see {@link createPrefixedLines}. */
export interface PrefixedLines {
  /** Writes the complete lines of what was held plus bytes; resolves once write() took them. */
  write(bytes: Uint8Array): Promise<void>;
  /** Writes a held last line with a newline added; call once, at the end. */
  end(): Promise<void>;
}

/**
 * Writes bytes line by line with `prefix` before each line; a last line without a newline is
 * held until more bytes complete it or end() writes it with a newline added. Lines are split on
 * `\n` bytes only, so multi-byte UTF-8 characters split across chunks stay intact.
 */
export function createPrefixedLines(write: (bytes: Uint8Array) => Promise<void>, prefix: string): PrefixedLines {
  const head = Buffer.from(prefix);
  let pending = Buffer.alloc(0);
  return {
    async write(bytes: Uint8Array): Promise<void> {
      const data = Buffer.concat([pending, bytes]);
      const last = data.lastIndexOf(0x0a);
      if (last === -1) {
        pending = data;
        return;
      }
      pending = data.subarray(last + 1);
      const lines: Buffer[] = [];
      let start = 0;
      while (start <= last) {
        const end = data.indexOf(0x0a, start);
        lines.push(head, data.subarray(start, end + 1));
        start = end + 1;
      }
      await write(Buffer.concat(lines));
    },
    async end(): Promise<void> {
      if (pending.byteLength > 0) await write(Buffer.concat([head, pending, Buffer.from("\n")]));
      pending = Buffer.alloc(0);
    },
  };
}
