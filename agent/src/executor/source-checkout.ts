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
  /** Where to write `privkey` (mode 0600) while git runs; outside the workspace. Removed by removeCheckoutKey. */
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
 * Checks out a task's sources on the agent, shared by the host and docker executors: clones
 * `spec.source` into `workspace` (which must be empty) and checks out `spec.commit` when set.
 * With `spec.privkey`, the key is written to `keyFile` and git uses it for ssh (no other
 * identity, host keys accepted on first use). Never prompts. Throws an Error naming the field
 * (`source: …`, `commit: …`) when a step fails. The caller removes `keyFile` afterwards
 * (removeCheckoutKey), also when this throws.
 */
export async function checkoutSource(input: SourceCheckoutInput): Promise<void> {
  const { spec, workspace, keyFile, run } = input;
  const env: Record<string, string> = { ...input.env, GIT_TERMINAL_PROMPT: "0" };
  if (spec.privkey !== "") {
    await writeFile(keyFile, spec.privkey.endsWith("\n") ? spec.privkey : `${spec.privkey}\n`, { mode: 0o600 });
    env.GIT_SSH_COMMAND = `ssh -i ${shellQuote(keyFile)} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new`;
  }
  const clone = await run(["git", "clone", "--quiet", "--", spec.source, "."], workspace, env);
  if (clone.code !== 0) throw new Error(`source: cloning ${spec.source} failed (${describeExit(clone)})`);
  if (spec.commit !== "") {
    const co = await run(["git", "-c", "advice.detachedHead=false", "checkout", "--quiet", spec.commit, "--"], workspace, env);
    if (co.code !== 0) throw new Error(`commit: checking out ${spec.commit} failed (${describeExit(co)})`);
  }
}

/** Removes the key file checkoutSource may have written; no error when there is none. */
export async function removeCheckoutKey(keyFile: string): Promise<void> {
  await rm(keyFile, { force: true });
}
