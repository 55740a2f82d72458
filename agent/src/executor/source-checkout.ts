import { rm, writeFile } from "node:fs/promises";
import type { TaskSpec } from "@mottainai/proto";
import type { Exit } from "./group-process.js";

/** Runs one command of the checkout (argv, working directory, full environment) and reports how it ended. */
export type CheckoutRunner = (argv: string[], cwd: string, env: Record<string, string>) => Promise<Exit>;

/** What checkoutSource needs. */
export interface SourceCheckoutInput {
  /** The task's `source` (git URL or path), `commit` (optional) and `privkey` (optional ssh key). */
  spec: Pick<TaskSpec, "source" | "commit" | "privkey">;
  /** The empty directory to clone into (the attempt's workspace). */
  workspace: string;
  /**
   * Where to write `privkey` (mode 0600) while git runs; outside the workspace (the script must
   * never see it). checkoutSource removes it before returning or throwing; removeCheckoutKey
   * removes it again when the agent dies in between.
   */
  keyFile: string;
  /** Environment of the git commands (PATH, HOME, …); GIT_TERMINAL_PROMPT and GIT_SSH_COMMAND are added. */
  env: Record<string, string>;
  /** Runs each git command; its output goes to the task's log. */
  run: CheckoutRunner;
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function describeExit(exit: Exit): string {
  return exit.error ?? (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`);
}

/**
 * The ssh command git uses for a checkout (GIT_SSH_COMMAND). Always batch mode: ssh never asks
 * for a password, a passphrase or a host key. With a key: only that identity, and the host key
 * accepted as on a first connection without being remembered (an empty known-hosts file), as
 * every task checkout is a first connection; without: the agent user's ssh settings.
 */
export function checkoutSshCommand(keyFile?: string): string {
  if (keyFile === undefined) return "ssh -o BatchMode=yes";
  return [
    "ssh",
    `-i ${shellQuote(keyFile)}`,
    "-o IdentitiesOnly=yes",
    "-o BatchMode=yes",
    "-o StrictHostKeyChecking=accept-new",
    "-o UserKnownHostsFile=/dev/null",
    "-o GlobalKnownHostsFile=/dev/null",
    "-o LogLevel=ERROR",
  ].join(" ");
}

/**
 * Checks out a task's sources on the agent, shared by the host and docker executors: clones
 * `spec.source` into `workspace` (which must be empty) and checks out `spec.commit` when set.
 * With `spec.privkey`, the key is written to `keyFile` (mode 0600) and git's ssh uses it and
 * nothing else (checkoutSshCommand); the file is removed again before this returns or throws.
 * Never prompts. Throws an Error naming the field (`source: …`, `commit: …`) when a step fails.
 */
export async function checkoutSource(input: SourceCheckoutInput): Promise<void> {
  try {
    await checkout(input);
  } finally {
    await removeCheckoutKey(input.keyFile);
  }
}

async function checkout(input: SourceCheckoutInput): Promise<void> {
  const { spec, workspace, keyFile, run } = input;
  const env: Record<string, string> = { ...input.env, GIT_TERMINAL_PROMPT: "0", GIT_SSH_COMMAND: checkoutSshCommand() };
  if (spec.privkey !== "") {
    await removeCheckoutKey(keyFile);
    await writeFile(keyFile, spec.privkey.endsWith("\n") ? spec.privkey : `${spec.privkey}\n`, { mode: 0o600, flag: "wx" });
    env.GIT_SSH_COMMAND = checkoutSshCommand(keyFile);
  }
  const clone = await run(["git", "clone", "--quiet", "--", spec.source, "."], workspace, env);
  if (clone.code !== 0) throw new Error(`source: cloning ${spec.source} failed (${describeExit(clone)})`);
  if (spec.commit !== "") {
    const co = await run(["git", "-c", "advice.detachedHead=false", "checkout", "--quiet", spec.commit, "--"], workspace, env);
    if (co.code !== 0) throw new Error(`commit: checking out ${spec.commit} failed (${describeExit(co)})`);
  }
}

/** Removes the key file checkoutSource may have left when the agent died during a checkout; no error when there is none. */
export async function removeCheckoutKey(keyFile: string): Promise<void> {
  await rm(keyFile, { force: true });
}
