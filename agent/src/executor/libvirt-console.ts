import { chmod, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";

/** The byte the agent answers the guest's trailer with (docs/libvirt-guest.md). */
export const TRAILER_ACK = Buffer.from("A");

/** What the output socket delivered when it closed. */
export interface ConsoleEnd {
  /** The exit code of the guest's trailer; undefined when the stream ended without one. */
  exitCode?: number;
}

/** Options of listenConsole. */
export interface ConsoleOptions {
  /** Unix socket path to listen on; qemu connects to it (chardev mode='connect'). */
  path: string;
  /** The run's nonce: the markers are `MOTTAINAI-START:<nonce>\n` and `MOTTAINAI-END:<nonce>:<code>\n`. */
  nonce: string;
  /** Receives the task's output, bytes exact, markers removed. */
  onOutput: (chunk: Buffer) => void;
  /** Called once the guest's start marker arrived (the script is about to run). */
  onStart?: () => void;
}

/** The output socket of one domain. */
export interface ConsoleListener {
  /** Whether the start marker arrived. */
  readonly started: boolean;
  /** Resolves when qemu's connection closed (the domain ended), or after close(). */
  readonly ended: Promise<ConsoleEnd>;
  /** Stops listening and drops the connection; ended resolves. Idempotent. */
  close(): Promise<void>;
}

function listen(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  return new Promise((resolveListen, rejectListen) => {
    const server = createServer({ allowHalfOpen: false, pauseOnConnect: false }, onConnection);
    server.once("error", rejectListen);
    server.listen(path, () => {
      server.off("error", rejectListen);
      resolveListen(server);
    });
  });
}

/** The longest suffix of `buf` that is a proper prefix of `marker`. */
function partialSuffix(buf: Buffer, marker: Buffer): number {
  for (let k = Math.min(marker.length - 1, buf.length); k > 0; k--) {
    if (buf.subarray(buf.length - k).equals(marker.subarray(0, k))) return k;
  }
  return 0;
}

/**
 * Listens on the unix socket of a domain's output port (a virtio-serial port, OUTPUT_PORT_NAME),
 * before the domain starts, and turns what the guest runner writes there into the task's output: the start marker is
 * removed, bytes up to the end trailer are delivered exactly (a tail that could begin the
 * trailer is held back until it is known not to), the trailer gives the exit code and is
 * answered with TRAILER_ACK so that the guest ends only after every byte arrived; nothing
 * after the trailer is delivered. One connection is accepted (qemu's); the socket file is
 * made reachable for a qemu running as another user (mode 0666).
 */
export async function listenConsole(options: ConsoleOptions): Promise<ConsoleListener> {
  const start = Buffer.from(`MOTTAINAI-START:${options.nonce}\n`);
  const end = Buffer.from(`MOTTAINAI-END:${options.nonce}:`);
  let phase: "boot" | "running" | "trailer" | "done" = "boot";
  let held: Buffer = Buffer.alloc(0);
  let trailer = "";
  let exitCode: number | undefined;
  let connection: Socket | undefined;
  let resolveEnded!: (end: ConsoleEnd) => void;
  const ended = new Promise<ConsoleEnd>((r) => (resolveEnded = r));
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    if (phase === "running" && held.length > 0) options.onOutput(held);
    held = Buffer.alloc(0);
    resolveEnded(exitCode !== undefined ? { exitCode } : {});
  };

  const onData = (chunk: Buffer): void => {
    let buf = held.length > 0 ? Buffer.concat([held, chunk]) : chunk;
    held = Buffer.alloc(0);
    if (phase === "boot") {
      if (buf.length < start.length && start.subarray(0, buf.length).equals(buf)) {
        held = Buffer.from(buf);
        return;
      }
      phase = "running";
      if (buf.subarray(0, start.length).equals(start)) {
        buf = buf.subarray(start.length);
        options.onStart?.();
      }
    }
    if (phase === "running") {
      const at = buf.indexOf(end);
      if (at < 0) {
        const keep = partialSuffix(buf, end);
        if (buf.length > keep) options.onOutput(Buffer.from(buf.subarray(0, buf.length - keep)));
        held = Buffer.from(buf.subarray(buf.length - keep));
        return;
      }
      if (at > 0) options.onOutput(Buffer.from(buf.subarray(0, at)));
      phase = "trailer";
      buf = buf.subarray(at + end.length);
    }
    if (phase === "trailer") {
      const nl = buf.indexOf(0x0a);
      trailer += buf.subarray(0, nl < 0 ? buf.length : nl).toString("latin1");
      if (nl >= 0 || trailer.length > 12) {
        phase = "done";
        const code = Number(trailer);
        exitCode = /^\d{1,3}$/.test(trailer) ? code : 255;
        connection?.write(TRAILER_ACK);
      }
    }
  };

  let server: Server | undefined;
  server = await listen(options.path, (socket) => {
    if (connection) {
      socket.destroy();
      return;
    }
    connection = socket;
    void server?.close();
    socket.on("data", onData);
    socket.on("error", () => undefined);
    socket.once("close", finish);
  });
  await chmod(options.path, 0o666);

  return {
    get started() {
      return phase !== "boot";
    },
    ended,
    async close(): Promise<void> {
      connection?.destroy();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      server = undefined;
      await rm(options.path, { force: true });
      finish();
    },
  };
}

/** A socket that keeps the last bytes qemu sent, for the serial console (the kernel's messages). */
export interface SerialListener {
  /** The last `limit` bytes received, as text. */
  tail(): string;
  close(): Promise<void>;
}

/** Listens on the serial console's unix socket and keeps the last `limit` bytes (default 16 KiB). */
export async function listenSerial(path: string, limit = 16 * 1024): Promise<SerialListener> {
  let kept: Buffer = Buffer.alloc(0);
  let connection: Socket | undefined;
  let server: Server | undefined = await listen(path, (socket) => {
    if (connection) {
      socket.destroy();
      return;
    }
    connection = socket;
    void server?.close();
    socket.on("data", (chunk: Buffer) => {
      kept = Buffer.concat([kept, chunk]);
      if (kept.length > limit) kept = kept.subarray(kept.length - limit);
    });
    socket.on("error", () => undefined);
  });
  await chmod(path, 0o666);
  return {
    tail: () => kept.toString("utf8").replace(/\r\n/g, "\n"),
    async close(): Promise<void> {
      connection?.destroy();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      server = undefined;
      await rm(path, { force: true });
    },
  };
}
