import { createReadStream, existsSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { extname, join, normalize, sep } from "node:path";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

/** Vite names what it hashes `assets/<name>-<hash>.<ext>`: those never change under one URL. */
const IMMUTABLE = "public, max-age=31536000, immutable";
const REVALIDATE = "no-cache";

/** An RPC path (`/package.Service/Method`): never answered with the app. */
const RPC_PATH = /^\/[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+\/[A-Za-z_]\w*$/;

/**
 * Serves the dashboard's built files from dir (web/dist) under `/`: files under /assets/ as
 * immutable, every other file and index.html as no-cache, and index.html for any other GET or
 * HEAD path (the single-page app routes itself), except RPC paths, which are left to the Connect
 * handler. Answers nothing (returns false) when dir holds no index.html (the app is not built)
 * or the request is not a GET/HEAD, so it must be the last route before the Connect handler.
 */
export function createWebRoute(dir: string): (req: Req, res: Res) => boolean {
  const index = join(dir, "index.html");
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = decodeURIComponent((req.url ?? "/").split("?")[0] ?? "/");
    if (RPC_PATH.test(path) || !existsSync(index)) return false;
    let file = normalize(join(dir, path));
    if (!file.startsWith(dir + sep) || !isFile(file)) file = index;
    const cache = file !== index && path.startsWith("/assets/") ? IMMUTABLE : REVALIDATE;
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": statSync(file).size,
      "cache-control": cache,
      "x-content-type-options": "nosniff",
    });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res as NodeJS.WritableStream);
    return true;
  };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
