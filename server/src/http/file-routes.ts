import type http from "node:http";
import type http2 from "node:http2";
import { pipeline } from "node:stream/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { readableStorage, readableTask, checkedPath } from "../auth/file-access.js";
import { resolvePrincipal } from "../auth/authenticator.js";
import type { Principal } from "../auth/principal.js";
import type { BlobStore } from "../blob/blob-store.js";
import type { Store } from "../store/store.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

/** A file an HTTP route serves: its blob and size. */
export interface ServedFile {
  sha256: string;
  size: number;
}

/**
 * One family of plain-HTTP file URLs, `/<prefix>/<segments…>`. resolve() maps the caller and
 * the decoded path segments after the prefix to a file, or throws a ConnectError: NotFound,
 * PermissionDenied and InvalidArgument become 404 (nothing is revealed), Unauthenticated 401.
 */
export interface FileRoute {
  /** First path segment, e.g. "artefacts". */
  prefix: string;
  /** Whether callers without a token reach resolve() as anonymous (e.g. public namespaces); default false: 401. */
  anonymous?: boolean;
  resolve(principal: Principal, segments: string[]): Promise<ServedFile>;
}

/** Options of createFileRoutes. */
export interface FileRoutesOptions {
  store: Store;
  blobs: BlobStore;
  routes: FileRoute[];
  logger: Logger;
}

/**
 * `GET /artefacts/<taskId>/<path>`: a task's artefact, for whoever may read the task
 * (readableTask).
 */
export function artefactRoute(store: Store): FileRoute {
  return {
    prefix: "artefacts",
    async resolve(principal, [taskId = "", ...rest]) {
      const task = await readableTask(store, principal, taskId);
      const record = await store.artefacts.get(task.id, checkedPath(rest.join("/"), "path"));
      if (!record) throw new ConnectError("no such artefact", Code.NotFound);
      return record;
    },
  };
}

/** `GET /storages/<id-or-name>/<path>`: a storage file, for whoever may read the storage (readableStorage). */
export function storageRoute(store: Store): FileRoute {
  return {
    prefix: "storages",
    async resolve(principal, [idOrName = "", ...rest]) {
      const storage = await readableStorage(store, principal, idOrName);
      const record = await store.storages.getFile(storage.id, checkedPath(rest.join("/"), "path"));
      if (!record) throw new ConnectError("no such file", Code.NotFound);
      return record;
    },
  };
}

/** A parsed Range header: the bytes to send, "unsatisfiable" (416), or undefined for the whole file. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or another unit: the whole file is a valid answer (RFC 9110 §14.2).
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

/**
 * The plain HTTP GET/HEAD handler for files (curl and wget friendly), on the server's one port:
 * returns true when the request's path belongs to one of `routes` (and answers it), false to let
 * the RPC handler have it. Authentication is `Authorization: Bearer <token>`, resolved as for RPCs.
 * Answers 200 with the whole file, 206 for one satisfiable byte range, 416 otherwise, 304 for a
 * matching If-None-Match; always with Content-Length, Accept-Ranges and the sha256 as ETag.
 * 401 without a (valid) token, 404 for a file that is missing or not the caller's to read.
 * To add a family of URLs, add a FileRoute.
 */
export function createFileRoutes(o: FileRoutesOptions): (req: Request, res: Response) => boolean {
  const byPrefix = new Map(o.routes.map((r) => [r.prefix, r]));
  return (req, res) => {
    const url = req.url ?? "/";
    const pathname = url.split("?", 1)[0] ?? "/";
    const route = byPrefix.get(pathname.split("/")[1] ?? "");
    if (!route) return false;
    void serve(o, route, pathname, req, res).catch((err: unknown) => {
      o.logger.warn({ err, url }, "file request failed");
      if (!res.headersSent) plain(res, 500, "internal error\n");
      else res.destroy?.();
    });
    return true;
  };
}

function plain(res: Response, status: number, text: string, headers: Record<string, string> = {}): void {
  (res as http.ServerResponse).writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

async function serve(o: FileRoutesOptions, route: FileRoute, pathname: string, req: Request, res: Response): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    plain(res, 405, "only GET and HEAD\n", { allow: "GET, HEAD" });
    return;
  }
  let segments: string[];
  try {
    segments = pathname.split("/").slice(2).map(decodeURIComponent);
  } catch {
    plain(res, 404, "not found\n");
    return;
  }
  const challenge = { "www-authenticate": 'Bearer realm="mottainai"' };
  const header = req.headers.authorization;
  let principal: Principal = { kind: "anonymous" };
  try {
    if (typeof header === "string" && header !== "") {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      if (!m?.[1]) throw new ConnectError("malformed authorization header", Code.Unauthenticated);
      principal = await resolvePrincipal(o.store, m[1]);
    } else if (!route.anonymous) {
      plain(res, 401, "a bearer token is required\n", challenge);
      return;
    }
  } catch (err) {
    plain(res, 401, `${ConnectError.from(err).rawMessage}\n`, challenge);
    return;
  }
  let file: ServedFile;
  try {
    file = await route.resolve(principal, segments);
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    if (err.code === Code.Unauthenticated) plain(res, 401, `${err.rawMessage}\n`, challenge);
    else plain(res, 404, "not found\n");
    return;
  }
  const etag = `"${file.sha256}"`;
  const common = { "accept-ranges": "bytes", etag, "cache-control": "private, no-cache" };
  const ifNoneMatch = req.headers["if-none-match"];
  if (typeof ifNoneMatch === "string" && ifNoneMatch.split(",").some((t) => t.trim() === etag || t.trim() === "*")) {
    (res as http.ServerResponse).writeHead(304, common);
    res.end();
    return;
  }
  const rangeHeader = req.headers.range;
  const range = parseRange(typeof rangeHeader === "string" ? rangeHeader : undefined, file.size);
  if (range === "unsatisfiable") {
    plain(res, 416, "range not satisfiable\n", { ...common, "content-range": `bytes */${file.size}` });
    return;
  }
  const start = range?.start ?? 0;
  const length = range ? range.end - range.start + 1 : file.size;
  const headers: Record<string, string> = {
    ...common,
    "content-type": "application/octet-stream",
    "content-length": String(length),
  };
  if (range) headers["content-range"] = `bytes ${range.start}-${range.end}/${file.size}`;
  if (req.method === "HEAD") {
    (res as http.ServerResponse).writeHead(range ? 206 : 200, headers);
    res.end();
    return;
  }
  const body = await o.blobs.get(file.sha256, start, length);
  (res as http.ServerResponse).writeHead(range ? 206 : 200, headers);
  await pipeline(body, res as http.ServerResponse);
}
