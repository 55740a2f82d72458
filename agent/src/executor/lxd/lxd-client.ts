import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Writable } from "node:stream";
import { WebSocket, type ClientOptions } from "ws";

/** Debian's lxd 5.0 unix socket; snap installs use /var/snap/lxd/common/lxd/unix.socket. */
export const DEFAULT_LXD_SOCKET = "/var/lib/lxd/unix.socket";

/** Where and how to reach LXD: its unix socket (the default) or a remote `https://` endpoint with a client certificate. */
export interface LxdEndpoint {
  /** Unix socket path. Default DEFAULT_LXD_SOCKET unless `url` is given. */
  socketPath?: string;
  /** `https://host:8443` of a remote LXD; needs `cert` and `key` trusted by it. */
  url?: string;
  /** PEM client certificate for `url`. */
  cert?: string;
  /** PEM key of `cert`. */
  key?: string;
  /** PEM CA (or the server's own certificate) that `url` is checked against; absent: the system's CAs. */
  ca?: string;
}

/** An error LXD answered with: the HTTP status and LXD's own message. */
export class LxdError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "LxdError";
  }
}

/** An LXD background operation as `GET /1.0/operations/<id>` shows it. */
export interface LxdOperation {
  id: string;
  class: string;
  status: string;
  status_code: number;
  err: string;
  metadata: Record<string, unknown> | null;
}

/** What exec() runs: one process in a running instance. */
export interface LxdExecRequest {
  /** argv; no shell is involved. */
  command: string[];
  /** The process's whole environment (LXD adds PATH, HOME, USER and LANG when absent). */
  environment: Record<string, string>;
  /** Working directory. Default the user's home. */
  cwd?: string;
  /** Bytes fed to stdin, then end of file. Default none: stdin is at end of file at once. */
  stdin?: AsyncIterable<Buffer>;
  /** Each stdout chunk in order (ignored when `stdoutSink` is given). */
  onStdout?(chunk: Buffer): void;
  /**
   * A stream that receives stdout instead, with backpressure: reading from LXD pauses while
   * the sink is full. It is not ended (the caller ends it once `done` resolved).
   */
  stdoutSink?: Writable;
  /** Each stderr chunk in order. Default: dropped. */
  onStderr?(chunk: Buffer): void;
}

/** A process started by exec(). */
export interface LxdExec {
  /**
   * Resolves when the process ended and its stdout and stderr were delivered: the exit code
   * LXD reports (128+N for signal N), or -1 when it has none (the instance was stopped under it).
   */
  readonly done: Promise<number>;
  /** Sends signal `signal` (a number, e.g. 15) to the process through the control channel. Best effort. */
  signal(signal: number): void;
  /** Drops the streams without waiting (the process goes on until the instance stops). */
  close(): void;
}

/**
 * A small typed client of the LXD REST API (https://documentation.ubuntu.com/lxd/en/latest/rest-api/):
 * sync requests, background operations with their `/wait`, and exec over the operation's
 * websockets (stdin, stdout, stderr and control; no TTY, so bytes arrive unchanged). One
 * instance per agent; every method may be called concurrently.
 */
export interface LxdClient {
  readonly endpoint: string;
  /** A sync request; resolves with `metadata`, rejects with LxdError (404 for a missing object). */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** An async request followed by its `/wait`; resolves with the finished operation, rejects with LxdError when it failed. */
  operation(method: string, path: string, body?: unknown, timeoutSeconds?: number): Promise<LxdOperation>;
  /** Waits for operation `id`; resolves with it finished (success or failure, no rejection for a failed one). */
  waitOperation(id: string, timeoutSeconds?: number): Promise<LxdOperation>;
  /** Starts `req.command` in the running instance `name` and wires its streams. */
  exec(name: string, req: LxdExecRequest): Promise<LxdExec>;
  /** Writes a file into an instance (running or not), creating nothing but the file itself. */
  pushFile(name: string, path: string, content: Buffer, mode?: number): Promise<void>;
}

interface LxdResponse {
  type: "sync" | "async" | "error";
  status_code: number;
  error_code: number;
  error: string;
  operation: string;
  metadata: unknown;
}

function readBody(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolveBody, rejectBody) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.once("end", () => resolveBody(Buffer.concat(chunks)));
    res.once("error", rejectBody);
  });
}

/** Creates a client for `endpoint` (default the local unix socket). Connects lazily, per request. */
export function createLxdClient(endpoint: LxdEndpoint = {}): LxdClient {
  const remote = endpoint.url !== undefined && endpoint.url !== "" ? new URL(endpoint.url) : undefined;
  if (remote && remote.protocol !== "https:")
    throw new Error(`lxd: a remote LXD is reached over https://, got "${endpoint.url}"`);
  const socketPath = endpoint.socketPath ?? DEFAULT_LXD_SOCKET;
  const tls = {
    ...(endpoint.cert ? { cert: endpoint.cert } : {}),
    ...(endpoint.key ? { key: endpoint.key } : {}),
    ...(endpoint.ca ? { ca: endpoint.ca } : {}),
  };
  const describe = remote ? remote.origin : `unix://${socketPath}`;

  const raw = (
    method: string,
    path: string,
    body?: Buffer,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolveRaw, rejectRaw) => {
      const opts: RequestOptions = {
        method,
        path,
        headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) },
        ...(remote ? { host: remote.hostname, port: remote.port || 8443, ...tls } : { socketPath }),
      };
      const req = (remote ? httpsRequest : httpRequest)(opts, (res) => {
        readBody(res).then((b) => resolveRaw({ status: res.statusCode ?? 0, body: b }), rejectRaw);
      });
      req.once("error", (err) => rejectRaw(new Error(`lxd at ${describe}: ${err.message}`, { cause: err })));
      req.end(body);
    });

  const call = async (method: string, path: string, body?: unknown): Promise<LxdResponse> => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const res = await raw(method, path, payload, payload ? { "content-type": "application/json" } : {});
    let parsed: LxdResponse;
    try {
      parsed = JSON.parse(res.body.toString("utf8")) as LxdResponse;
    } catch {
      throw new LxdError(`lxd: ${method} ${path}: HTTP ${res.status} with a body that is not JSON`, res.status);
    }
    if (parsed.type === "error" || res.status >= 400)
      throw new LxdError(parsed.error || `lxd: ${method} ${path}: HTTP ${res.status}`, parsed.error_code || res.status);
    return parsed;
  };

  const waitOperation = async (id: string, timeoutSeconds = -1): Promise<LxdOperation> =>
    (await call("GET", `/1.0/operations/${encodeURIComponent(id)}/wait?timeout=${timeoutSeconds}`)).metadata as LxdOperation;

  const socketUrl = (opPath: string, secret: string): string =>
    remote
      ? `wss://${remote.host}${opPath}/websocket?secret=${encodeURIComponent(secret)}`
      : `ws+unix://${socketPath}:${opPath}/websocket?secret=${encodeURIComponent(secret)}`;

  const connect = (url: string): Promise<WebSocket> =>
    new Promise((resolveWs, rejectWs) => {
      const ws = new WebSocket(url, { ...(remote ? tls : {}), perMessageDeflate: false } as ClientOptions);
      ws.binaryType = "nodebuffer";
      ws.once("open", () => resolveWs(ws));
      ws.once("error", (err) => rejectWs(new Error(`lxd exec websocket: ${err.message}`, { cause: err })));
    });

  /** Resolves when `ws` delivered its last chunk: LXD ends a stream with an empty text message or a close. */
  const drain = (ws: WebSocket, onChunk: (chunk: Buffer) => void, sink?: Writable): Promise<void> =>
    new Promise((resolveDrain) => {
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        resolveDrain();
      };
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        if (ended) return;
        if (!isBinary && data.length === 0) {
          end();
          ws.close();
          return;
        }
        if (data.length === 0) return;
        if (!sink) onChunk(data);
        else if (sink.destroyed || sink.writableEnded) return;
        else if (!sink.write(data)) {
          ws.pause();
          const go = (): void => {
            sink.off("drain", go);
            sink.off("close", go);
            ws.resume();
          };
          sink.on("drain", go);
          sink.on("close", go);
        }
      });
      ws.once("close", end);
      ws.once("error", end);
      sink?.on("error", () => undefined);
    });

  const sendAll = async (ws: WebSocket, source: AsyncIterable<Buffer> | undefined): Promise<void> => {
    const send = (data: Buffer, binary: boolean): Promise<void> =>
      new Promise((resolveSend, rejectSend) => ws.send(data, { binary }, (err) => (err ? rejectSend(err) : resolveSend())));
    try {
      if (source) for await (const chunk of source) if (chunk.length > 0) await send(chunk, true);
      // An empty text message is LXD's end of file of stdin.
      await send(Buffer.alloc(0), false);
    } catch {
      // The process went away before reading everything.
    }
    ws.close();
  };

  return {
    endpoint: describe,

    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      return (await call(method, path, body)).metadata as T;
    },

    async operation(method: string, path: string, body?: unknown, timeoutSeconds = -1): Promise<LxdOperation> {
      const res = await call(method, path, body);
      const id = (res.metadata as LxdOperation | null)?.id ?? res.operation.split("/").pop() ?? "";
      const op = await waitOperation(id, timeoutSeconds);
      if (op.status !== "Success") throw new LxdError(op.err || `lxd: ${method} ${path}: operation ${op.status}`, op.status_code);
      return op;
    },

    waitOperation,

    async exec(name: string, req: LxdExecRequest): Promise<LxdExec> {
      const res = await call("POST", `/1.0/instances/${encodeURIComponent(name)}/exec`, {
        command: req.command,
        environment: req.environment,
        ...(req.cwd !== undefined ? { cwd: req.cwd } : {}),
        "wait-for-websocket": true,
        interactive: false,
        "record-output": false,
      });
      const op = res.metadata as LxdOperation;
      const fds = (op.metadata as { fds?: Record<string, string> } | null)?.fds ?? {};
      const opPath = `/1.0/operations/${encodeURIComponent(op.id)}`;
      const sockets: WebSocket[] = [];
      try {
        for (const fd of ["control", "0", "1", "2"]) {
          const secret = fds[fd];
          if (secret === undefined) throw new Error(`lxd exec: the operation has no websocket for fd ${fd}`);
          sockets.push(await connect(socketUrl(opPath, secret)));
        }
      } catch (err) {
        for (const ws of sockets) ws.terminate();
        throw err;
      }
      const [control, stdin, stdout, stderr] = sockets as [WebSocket, WebSocket, WebSocket, WebSocket];
      const outputs = Promise.all([
        drain(stdout, req.onStdout ?? (() => undefined), req.stdoutSink),
        drain(stderr, req.onStderr ?? (() => undefined)),
      ]);
      control.on("message", () => undefined);
      control.once("error", () => undefined);
      stdin.on("message", () => undefined);
      stdin.once("error", () => undefined);
      void sendAll(stdin, req.stdin);
      const done = (async () => {
        const finished = await waitOperation(op.id).catch(() => undefined);
        await outputs;
        control.close();
        const code = (finished?.metadata as { return?: number } | null)?.return;
        return finished?.status === "Success" && typeof code === "number" ? code : -1;
      })();
      return {
        done,
        signal(signal: number): void {
          if (control.readyState !== WebSocket.OPEN) return;
          control.send(JSON.stringify({ command: "signal", signal }), () => undefined);
        },
        close(): void {
          for (const ws of sockets) ws.terminate();
        },
      };
    },

    async pushFile(name: string, path: string, content: Buffer, mode = 0o644): Promise<void> {
      const res = await raw(
        "POST",
        `/1.0/instances/${encodeURIComponent(name)}/files?path=${encodeURIComponent(path)}`,
        content,
        {
          "content-type": "application/octet-stream",
          "x-lxd-type": "file",
          "x-lxd-mode": mode.toString(8).padStart(4, "0"),
          "x-lxd-uid": "0",
          "x-lxd-gid": "0",
          "x-lxd-write": "overwrite",
        },
      );
      if (res.status >= 400) {
        let message = `lxd: cannot push ${path}: HTTP ${res.status}`;
        try {
          message = (JSON.parse(res.body.toString("utf8")) as LxdResponse).error || message;
        } catch {
          // Not JSON.
        }
        throw new LxdError(message, res.status);
      }
    },
  };
}
