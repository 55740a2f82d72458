import type { Writable } from "node:stream";
import { type DescMessage, type JsonValue, type MessageShape, toJson } from "@bufbuild/protobuf";
import Table from "cli-table3";
import { SingleBar } from "cli-progress";
import { formatBytes, formatErrorMessage } from "./format.js";

/** The streams an {@link Output} writes to: the command's stdout and stderr. */
export interface OutputStreams {
  stdout: Writable;
  stderr: Writable;
}

/** A transfer's progress: advance() by bytes moved, done() once at the end (also on failure). */
export interface TransferProgress {
  advance(bytes: number): void;
  done(): void;
}

const borderless = {
  top: "",
  "top-mid": "",
  "top-left": "",
  "top-right": "",
  bottom: "",
  "bottom-mid": "",
  "bottom-left": "",
  "bottom-right": "",
  left: "",
  "left-mid": "",
  mid: "",
  "mid-mid": "",
  right: "",
  "right-mid": "",
  middle: "  ",
};

/**
 * The only writer to the terminal. Results go to stdout (tables, `key: value` views, JSON, ids,
 * raw log bytes) so that they can be piped; diagnostics go to stderr as one line
 * `mottainai: <message>`.
 */
export class Output {
  constructor(private readonly streams: OutputStreams) {}

  /** Writes `text` and a newline to stdout. */
  line(text: string): void {
    this.streams.stdout.write(`${text}\n`);
  }

  /**
   * Writes `bytes` to stdout exactly as received (no decoding), resolving once the stream has
   * taken them, so that a slow reader applies back-pressure to the RPC stream.
   */
  raw(bytes: Uint8Array): Promise<void> {
    const chunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return new Promise((resolve, reject) => {
      this.streams.stdout.write(chunk, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Writes `value` as JSON pretty-printed with two spaces (the `--json` format). */
  json(value: JsonValue): void {
    this.line(JSON.stringify(value, null, 2));
  }

  /** Writes `value` as compact JSON on one line (JSON lines, for streams such as `events tail`). */
  jsonLine(value: JsonValue): void {
    this.line(JSON.stringify(value));
  }

  /**
   * Writes a borderless table: an upper-case header row, then `rows`, columns separated by two
   * spaces. Whitespace runs inside cells (newlines included) become one space, so that one row
   * is always one line. With no rows, only the header is written.
   */
  table(head: readonly string[], rows: readonly (readonly string[])[]): void {
    const table = new Table({
      head: [...head],
      chars: borderless,
      style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
    });
    for (const row of rows) {
      table.push(row.map((cell) => cell.replace(/\s+/g, " ")));
    }
    for (const line of table.toString().split("\n")) {
      this.line(line.trimEnd());
    }
  }

  /**
   * The view of a list command: with json (its `--json`) the items as one JSON array of their
   * proto3 canonical forms, otherwise a {@link Output.table} of head and one row per item.
   */
  list<Desc extends DescMessage>(
    json: boolean,
    schema: Desc,
    items: readonly MessageShape<Desc>[],
    head: readonly string[],
    row: (item: MessageShape<Desc>) => readonly string[],
  ): void {
    if (json) this.json(items.map((item) => toJson(schema, item)));
    else this.table(head, items.map(row));
  }

  /** Writes one `key: value` line per entry, in order (greppable: `^status: `). */
  fields(entries: readonly (readonly [string, string])[]): void {
    for (const [key, value] of entries) {
      this.line(`${key}: ${value}`);
    }
  }

  /**
   * A progress bar on stderr for an upload or download of `totalBytes`, labelled `label`, drawn
   * only when stderr is a terminal; otherwise (pipes, files, tests) it writes nothing.
   */
  progress(label: string, totalBytes: number): TransferProgress {
    const stderr = this.streams.stderr as Writable & { isTTY?: boolean };
    if (!stderr.isTTY) return { advance() {}, done() {} };
    const bar = new SingleBar({
      stream: stderr as NodeJS.WritableStream,
      format: `${label} [{bar}] {percentage}% | {moved}/{size} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      fps: 10,
    });
    const started = Date.now();
    let moved = 0;
    const payload = () => ({
      moved: formatBytes(moved),
      size: formatBytes(totalBytes),
      rate: formatBytes(moved / Math.max(0.001, (Date.now() - started) / 1000)),
    });
    bar.start(Math.max(totalBytes, 1), 0, payload());
    return {
      advance(bytes) {
        moved += bytes;
        bar.update(Math.min(moved, Math.max(totalBytes, 1)), payload());
      },
      done() {
        bar.stop();
      },
    };
  }

  /** Writes `text` as it is to stderr (help and usage texts). */
  note(text: string): void {
    this.streams.stderr.write(text.endsWith("\n") ? text : `${text}\n`);
  }

  /** Writes the one-line error `mottainai: <message>` to stderr; see {@link formatErrorMessage}. */
  error(error: unknown): void {
    this.streams.stderr.write(`mottainai: ${formatErrorMessage(error)}\n`);
  }
}

/** Creates the {@link Output} of a command from its context's streams. */
export function createOutput(streams: OutputStreams): Output {
  return new Output(streams);
}
