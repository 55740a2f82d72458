// A trivial node:http2 server, the baseline receiver of the bench: it answers every request
// stream with headers at once, counts the bytes it receives and, when the client ends the stream,
// replies with {"bytes":N}. Prints {"port":N} when it listens; exits when its stdin closes.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

const server = http2.createServer();
server.on("stream", (stream) => {
  let bytes = 0;
  stream.on("error", () => undefined);
  stream.respond({ ":status": 200, "content-type": "application/json" });
  stream.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
  });
  stream.on("end", () => stream.end(JSON.stringify({ bytes })));
});
server.on("sessionError", () => undefined);
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.stdin.resume();
process.stdin.on("close", () => process.exit(0));
