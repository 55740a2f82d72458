import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Logger } from "pino";

/** A request handler usable by both HTTP/1.1 and HTTP/2 servers. */
export type DualHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** One listening port that speaks HTTP/1.1 and cleartext HTTP/2 (h2c with prior knowledge). */
export interface Listener {
  /** The bound port (useful when 0 was asked for). */
  readonly port: number;
  /**
   * Stops accepting connections, asks HTTP/2 clients to go away, and after graceMs destroys
   * whatever is still open. Resolves when every connection is gone.
   */
  close(graceMs: number): Promise<void>;
}

const H2_PREFACE_START = "PRI";

/**
 * Listens on host:port and routes each connection by its first bytes: the HTTP/2 connection
 * preface goes to an h2c server, anything else to an HTTP/1.1 server. Both use the same handler,
 * so gRPC (HTTP/2 only), gRPC-Web and Connect (either) share the port.
 */
export async function listen(host: string, port: number, handler: DualHandler, logger: Logger): Promise<Listener> {
  const h1 = http.createServer(handler as http.RequestListener);
  const h2 = http2.createServer({}, handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  h1.on("clientError", (err, socket) => {
    logger.debug({ err }, "bad HTTP/1.1 request");
    socket.destroy();
  });

  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < H2_PREFACE_START.length) return;
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      const target = head.toString("latin1", 0, H2_PREFACE_START.length) === H2_PREFACE_START ? h2 : h1;
      target.emit("connection", socket);
      process.nextTick(() => socket.resume());
    };
    socket.on("data", onData);
    socket.on("error", (err) => logger.debug({ err }, "connection error"));
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(port, host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });

  return {
    port: (tcp.address() as net.AddressInfo).port,
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, graceMs);
      const drained = new Promise<void>((resolve) => {
        const check = () => (sockets.size === 0 ? resolve() : setTimeout(check, 20));
        check();
      });
      await Promise.all([closed, drained]);
      clearTimeout(timer);
    },
  };
}
