import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ROOT, tempDir, waitFor } from "./harness.js";

const BRIDGE_MAIN = join(ROOT, "bridge/dist/main.js");
const NGIRCD = "/usr/sbin/ngircd";

/** A child process the bridge suites started; kill() ends it (SIGTERM, or the given signal). */
export interface Child {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

const children: Child[] = [];

/** Ends every child the bridge suites started. */
export async function stopChildren(): Promise<void> {
  while (children.length) await children.pop()!.kill();
}

function start(command: string, args: string[], name: string): Child {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  for (const s of [child.stdout, child.stderr]) createInterface({ input: s! }).on("line", (l) => output.push(`[${name}] ${l}`));
  const exited = new Promise<number | string>((r) => child.once("exit", (code, signal) => r(code ?? signal ?? "unknown")));
  const c: Child = {
    child,
    output,
    exited,
    async kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  children.push(c);
  return c;
}

/** A free TCP port on 127.0.0.1 (closed again at once). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Writes a YAML config and starts mottainai-bridge on it. */
export function startBridgeDaemon(configYaml: string, dir = tempDir("bridge")): Child & { configFile: string } {
  const configFile = join(dir, "bridge.yaml");
  writeFileSync(configFile, configYaml);
  return { ...start(process.execPath, [BRIDGE_MAIN, "--config", configFile, "--log-level", "trace"], "bridge"), configFile };
}

/**
 * Whether Debian's ngircd is installed; in CI its absence fails the suite (DESIGN §8), on a
 * developer's machine the suite skips with one line.
 */
export function ngircdReady(): boolean {
  if (existsSync(NGIRCD)) return true;
  const why = `${NGIRCD} is missing (apt-get install ngircd; scripts/ci/install-packages.sh)`;
  if (process.env.CI) throw new Error(`IRC e2e cannot run in CI: ${why}`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "ngircd", why);
  return false;
}

/** Starts ngircd on a free loopback port with the test settings of DESIGN §8. */
export async function startNgircd(): Promise<{ port: number; proc: Child }> {
  const port = await freePort();
  const dir = tempDir("ngircd");
  const conf = join(dir, "ngircd.conf");
  writeFileSync(
    conf,
    [
      "[Global]",
      "Name = irc.mottainai.test",
      "Listen = 127.0.0.1",
      `Ports = ${port}`,
      "[Options]",
      "PAM = no",
      "DNS = no",
      "Ident = no",
      "MaxPenaltyTime = 0",
      "MaxConnectionsIP = 0",
      "",
    ].join("\n"),
  );
  const proc = start(NGIRCD, ["-n", "-f", conf], "ngircd");
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
      }),
    10_000,
    () => `ngircd did not listen:\n${proc.output.join("\n")}`,
  );
  return { port, proc };
}

/** A raw-socket IRC client that joins a channel and records the PRIVMSG texts sent to it. */
export interface IrcReader {
  lines: string[];
  close(): void;
}

/** Connects, registers as nick, joins channel and resolves once the join is complete (366). */
export function ircReader(port: number, nick: string, channel: string): Promise<IrcReader> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const lines: string[] = [];
    const reader: IrcReader = { lines, close: () => socket.destroy() };
    socket.once("error", reject);
    socket.on("connect", () => socket.write(`NICK ${nick}\r\nUSER ${nick} 0 * :test reader\r\n`));
    createInterface({ input: socket, crlfDelay: Infinity }).on("line", (raw) => {
      const line = raw.replace(/\r$/, "");
      const words = line.split(" ");
      if (words[0] === "PING") socket.write(`PONG ${words.slice(1).join(" ")}\r\n`);
      else if (words[1] === "001") socket.write(`JOIN ${channel}\r\n`);
      else if (words[1] === "366") resolve(reader);
      else if (words[1] === "PRIVMSG" && words[2] === channel) lines.push(line.slice(line.indexOf(" :") + 2));
    });
  });
}
