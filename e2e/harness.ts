import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { NodeService, NodeState } from "@mottainai/proto";

/** Root of the repository (e2e/..). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SERVER_MAIN = join(ROOT, "server/dist/main.js");
const AGENT_MAIN = join(ROOT, "agent/dist/main.js");
const CLI_MAIN = join(ROOT, "cli/dist/main.js");

const cleanups: (() => void | Promise<void>)[] = [];

/** A fresh temporary directory removed by cleanupAll(). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mottainai-${prefix}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Stops every process and removes every directory the harness created, newest first. */
export async function cleanupAll(): Promise<void> {
  while (cleanups.length) await cleanups.pop()?.();
}

/** A child process with its combined log kept for failure messages. */
export interface Proc {
  child: ChildProcess;
  output: string[];
  /** Resolves with the exit code (or signal name) once the process ended. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after 5 s; resolves when it ended. */
  stop(): Promise<number | string>;
}

function track(child: ChildProcess, name: string): Proc {
  const output: string[] = [];
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on("line", (line) => output.push(`[${name}] ${line}`));
  }
  const proc: Proc = {
    child,
    output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        const result = await exited;
        clearTimeout(timer);
        return result;
      }
      return exited;
    },
  };
  cleanups.push(() => proc.stop().then(() => undefined));
  return proc;
}

/** A server started as a real process on a free port. */
export interface ServerProc extends Proc {
  url: string;
  port: number;
  dataDir: string;
  adminToken: string;
}

/** Starts mottainai-server on 127.0.0.1 with a free port; resolves once it listens. */
export async function startServer(options: { dataDir?: string; args?: string[]; port?: number } = {}): Promise<ServerProc> {
  const dataDir = options.dataDir ?? tempDir("server");
  const child = spawn(
    process.execPath,
    [SERVER_MAIN, "--listen", `127.0.0.1:${options.port ?? 0}`, "--data-dir", dataDir, ...(options.args ?? [])],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const proc = track(child, "server");
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${proc.output.join("\n")}`)), 20_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === "mottainai-server listening" && entry.port) {
        clearTimeout(timer);
        resolve(entry.port);
      }
    });
    void proc.exited.then((code) => reject(new Error(`server exited with ${code}:\n${proc.output.join("\n")}`)));
  });
  const adminToken = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
  return { ...proc, url: `http://127.0.0.1:${port}`, port, dataDir, adminToken };
}

/** Starts mottainai-agent against a server; resolves once it is connected. */
export async function startAgent(
  server: { url: string; adminToken: string },
  options: { registrationToken: string; name: string; stateDir?: string; args?: string[] },
): Promise<AgentProc> {
  const proc = spawnAgent(server, options);
  const nodes = adminClient(server, NodeService);
  await waitFor(
    async () => {
      const { nodes: list } = await nodes.listNodes({});
      return list.some((n) => n.name === options.name && n.state === NodeState.ONLINE);
    },
    20_000,
    () => `agent ${options.name} did not connect:\n${proc.output.join("\n")}`,
  );
  return proc;
}

/** A server with one connected agent, and what a CLI test needs around them. */
export interface Cluster {
  server: ServerProc;
  /** Environment pointing the CLI at the server with the admin token, and its own config dir. */
  env: Record<string, string>;
  /** A temporary directory for the test's files. */
  dir: string;
  /** Writes a file into dir and returns its path. */
  file(name: string, text: string): string;
}

/** Starts a server and one agent named agentName (host executor). */
export async function startCluster(agentName: string): Promise<Cluster> {
  const server = await startServer();
  await startAgent(server, { registrationToken: await registrationToken(server), name: agentName });
  const dir = tempDir("files");
  return {
    server,
    dir,
    env: { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken, XDG_CONFIG_HOME: tempDir("config") },
    file(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
  };
}

/** A Connect client of service authenticated with the server's admin token. */
export function adminClient<T extends DescService>(server: { url: string; adminToken: string }, service: T): Client<T> {
  return tokenClient(server.url, server.adminToken, service);
}

/** A Connect client of service sending token as bearer (none when empty). */
export function tokenClient<T extends DescService>(url: string, token: string, service: T): Client<T> {
  const transport = createConnectTransport({
    baseUrl: url,
    httpVersion: "1.1",
    interceptors: token ? [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] : [],
  });
  return createClient(service, transport);
}

/** Issues a registration token through the API. */
export async function registrationToken(server: { url: string; adminToken: string }): Promise<string> {
  return (await adminClient(server, NodeService).createRegistrationToken({ description: "e2e" })).secret;
}

/** Result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs the mottainai CLI with its own config directory; env adds or overrides variables. */
export function cli(args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on("data", (d: Buffer) => stdout.push(d));
  child.stderr.on("data", (d: Buffer) => stderr.push(d));
  child.stdin.end(input ?? "");
  return new Promise((resolve) =>
    child.once("close", (code) =>
      resolve({ code: code ?? -1, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString("utf8") }),
    ),
  );
}

/** Polls until check() is truthy or timeoutMs passes (then throws message()). */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs: number, message: () => string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(message());
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An agent process started by spawnAgent, not yet known to be connected. */
export interface AgentProc extends Proc {
  stateDir: string;
  /** Its stderr (pino JSON lines) parsed, in order; non-JSON lines are kept as { msg: line }. */
  logLines(): { level?: number; msg?: string; [key: string]: unknown }[];
}

/**
 * Starts mottainai-agent against a server without waiting for it to connect: for agents that
 * are expected to fail (a revoked registration token) or whose connection is awaited otherwise.
 * With a registration token (`options.registrationToken` empty: none, for a stored credential).
 */
export function spawnAgent(
  server: { url: string },
  options: { registrationToken?: string; name: string; stateDir?: string; args?: string[] },
): AgentProc {
  const stateDir = options.stateDir ?? tempDir("agent");
  const child = spawn(
    process.execPath,
    [
      AGENT_MAIN,
      "--server",
      server.url,
      ...(options.registrationToken ? ["--registration-token", options.registrationToken] : []),
      "--name",
      options.name,
      "--state-dir",
      stateDir,
      ...(options.args ?? []),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  const proc = track(child, `agent ${options.name}`);
  return {
    ...proc,
    stateDir,
    logLines: () =>
      stderr.map((line) => {
        try {
          return JSON.parse(line) as { level?: number; msg?: string };
        } catch {
          return { msg: line };
        }
      }),
  };
}

/** A CLI process that keeps running (`events tail`, `task log --follow`), read line by line. */
export interface CliStream {
  child: ChildProcess;
  /** Complete stdout lines received so far. */
  lines: string[];
  /** Resolves once check(lines) is truthy; throws after timeoutMs with the lines and stderr. */
  waitForLines<T>(check: (lines: string[]) => T | undefined | false, timeoutMs?: number): Promise<T>;
  /** Sends SIGINT (Ctrl-C) and resolves with the exit code and stderr once it ended. */
  interrupt(): Promise<{ code: number | string; stderr: string }>;
}

/** Starts the mottainai CLI as a long-running child; see {@link CliStream}. Stopped by cleanupAll() too. */
export function cliStream(args: string[], env: Record<string, string | undefined> = {}): CliStream {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
  const exited = new Promise<number | string>((resolve) =>
    child.once("close", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  function waitForLines<T>(check: (lines: string[]) => T | undefined | false, timeoutMs = 20_000): Promise<T> {
    return waitFor(
      () => check(lines) || undefined,
      timeoutMs,
      () => `CLI ${args.join(" ")} did not print the expected lines; stdout:\n${lines.join("\n")}\nstderr:\n${stderr}`,
    ) as Promise<T>;
  }
  return {
    child,
    lines,
    waitForLines,
    async interrupt() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      const code = await exited;
      return { code, stderr };
    },
  };
}
