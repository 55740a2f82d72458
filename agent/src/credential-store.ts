import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { NodeService } from "@mottainai/proto";
import type { Logger } from "pino";
import { createBackoff, type BackoffOptions } from "./backoff.js";
import { AgentFatalError } from "./errors.js";
import { systemTimers, type AgentTimers } from "./timers.js";

/** The node's identity, as RegisterNode returned it. */
export interface NodeCredential {
  nodeId: string;
  name: string;
  /** Bearer credential for AgentService. Secret: stored with mode 0600. */
  credential: string;
}

/** The credential file: `<stateDir>/credential.json`. */
export function credentialPath(stateDir: string): string {
  return join(stateDir, "credential.json");
}

/**
 * Reads the stored credential; undefined when there is none. A file that exists but is not a
 * credential is an AgentFatalError (delete it to register again).
 */
export async function readCredential(stateDir: string): Promise<NodeCredential | undefined> {
  const path = credentialPath(stateDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new AgentFatalError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  const c = doc as Partial<NodeCredential> | undefined;
  if (
    !c ||
    typeof c.nodeId !== "string" ||
    typeof c.name !== "string" ||
    typeof c.credential !== "string" ||
    c.credential === ""
  ) {
    throw new AgentFatalError(`${path} is not a node credential; delete it to register again`);
  }
  return { nodeId: c.nodeId, name: c.name, credential: c.credential };
}

/** Stores the credential atomically (temporary file with mode 0600, then rename). */
export async function writeCredential(stateDir: string, credential: NodeCredential): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = credentialPath(stateDir);
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(credential, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Options of obtainCredential. */
export interface ObtainCredentialOptions {
  stateDir: string;
  /** Node name to register under. */
  name: string;
  /** This machine's host name, sent with the registration. */
  hostname: string;
  /** Registration token; required only when no credential is stored. */
  registrationToken: string | undefined;
  /** Transport to the server without a bearer credential (RegisterNode takes none). */
  transport: Transport;
  logger: Logger;
  /** Aborts the registration retries (e.g. on SIGTERM); obtainCredential then rejects. */
  signal?: AbortSignal;
  /** Delays between registration attempts while the server is unreachable. */
  backoff?: BackoffOptions;
  /** Called after a transient failure, before the next attempt (moves to the next server of a list). */
  onRetry?: () => void;
  timers?: AgentTimers;
}

const TRANSIENT = new Set([
  Code.Unavailable,
  Code.DeadlineExceeded,
  Code.ResourceExhausted,
  Code.Aborted,
  Code.Unknown,
  Code.Internal,
]);

/**
 * Returns the stored node credential, registering the node first when there is none: calls
 * NodeService.RegisterNode with the registration token (no bearer) and stores the answer.
 * Retries while the server is unreachable; a refused registration, or a missing registration
 * token with no stored credential, is an AgentFatalError.
 */
export async function obtainCredential(options: ObtainCredentialOptions): Promise<NodeCredential> {
  const { stateDir, name, logger } = options;
  const stored = await readCredential(stateDir);
  if (stored) {
    if (stored.name !== name) {
      logger.warn(
        { storedName: stored.name, nodeName: name },
        `using the stored credential of node "${stored.name}"; delete ${credentialPath(stateDir)} to register as "${name}"`,
      );
    }
    return stored;
  }
  if (options.registrationToken === undefined || options.registrationToken === "") {
    throw new AgentFatalError(
      `--registration-token: required to register this node (no credential in ${credentialPath(stateDir)})`,
    );
  }
  const client = createClient(NodeService, options.transport);
  const backoff = createBackoff(options.backoff);
  const timers = options.timers ?? systemTimers;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const res = await client.registerNode(
        { registrationToken: options.registrationToken, name, hostname: options.hostname },
        { signal: options.signal },
      );
      const credential: NodeCredential = { nodeId: res.nodeId, name, credential: res.credential };
      if (credential.credential === "") throw new AgentFatalError("registration answered without a credential");
      await writeCredential(stateDir, credential);
      logger.info({ nodeId: credential.nodeId, nodeName: name }, "registered this node");
      return credential;
    } catch (err) {
      if (err instanceof AgentFatalError) throw err;
      options.signal?.throwIfAborted();
      const ce = ConnectError.from(err);
      if (!TRANSIENT.has(ce.code)) throw new AgentFatalError(`registration refused: ${ce.rawMessage}`, ce.code);
      const delay = backoff.next();
      logger.warn({ code: Code[ce.code], retryInMs: delay }, `cannot register yet: ${ce.rawMessage}`);
      options.onRetry?.();
      await new Promise<void>((resolve) => {
        const handle = timers.setTimeout(done, delay);
        function done(): void {
          timers.clearTimeout(handle);
          options.signal?.removeEventListener("abort", done);
          resolve();
        }
        options.signal?.addEventListener("abort", done, { once: true });
      });
    }
  }
}
