import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { PermanentDeliveryError, type Deliverer, type DeliveryJob } from "./deliverer.js";
import { runCommand } from "./run-command.js";

/** Options of {@link createGitDeliverer}. */
export interface GitDelivererOptions {
  /** Where work trees are made (one per attempt, removed after it). */
  workDir: string;
  /** Longest any one git command may take. */
  timeoutMs: number;
  /**
   * Environment of git (PATH, HOME, proxies, ssh agent…); the server's own when omitted. Author and
   * committer come from `-c user.*` settings, which GIT_AUTHOR_* / GIT_COMMITTER_* variables in it
   * would override.
   */
  env?: NodeJS.ProcessEnv;
  /** The git binary; "git" (from PATH) by default. */
  git?: string;
}

/** Author and committer of every delivered commit. */
export const DELIVERY_AUTHOR = { name: "Mottainai", email: "mottainai@localhost" };

/** The message of the commit that delivers a revision: names the namespace, revision and tag. */
export function deliveryCommitMessage(job: Pick<DeliveryJob, "delivery">): string {
  const d = job.delivery;
  return (
    `${d.namespace}: revision ${d.revision}\n\n` +
    `Tag "${d.tag}" of namespace ${d.namespace} moved to revision ${d.revision}; ` +
    `delivered by Mottainai (delivery ${d.id}).\n`
  );
}

/**
 * Delivers a revision as one git commit on a branch: in a fresh repository (git init, no
 * checkout of the target) it writes the revision's files, stages them all (`add -A -f`, so that
 * a .gitignore in the revision hides nothing), writes the tree, and commits it with the branch's
 * current tip as parent (fetched with depth 1; no parent when the branch or the whole repository
 * is still empty), then pushes that commit to refs/heads/<branch>. Every delivery makes exactly
 * one commit whose tree is exactly the revision, even when nothing changed. A concurrent push to
 * the branch makes the push fail (not a fast-forward) and the worker retry from the new tip.
 * Paths whose first segment is ".git" cannot be delivered. git never prompts (runCommand gives it
 * no terminal; ssh runs in batch mode) and never runs the ext:: transport.
 */
export function createGitDeliverer(options: GitDelivererOptions): Deliverer {
  const gitBinary = options.git ?? "git";
  const settings = [
    "protocol.ext.allow=never",
    "core.autocrlf=false",
    "core.sshCommand=ssh -o BatchMode=yes",
    "init.defaultBranch=main",
    `user.name=${DELIVERY_AUTHOR.name}`,
    `user.email=${DELIVERY_AUTHOR.email}`,
    "user.useConfigOnly=true",
  ].flatMap((setting) => ["-c", setting]);
  return {
    async deliver(job: DeliveryJob): Promise<void> {
      const hidden = job.files.find((f) => f.path.split("/")[0] === ".git");
      if (hidden) throw new PermanentDeliveryError(`${hidden.path}: a path inside .git cannot be delivered to a git repository`);
      const { target, branch } = job.publisher;
      const work = await mkdtemp(join(options.workDir, "git-"));
      const git = (args: string[], label: string) =>
        runCommand(gitBinary, [...settings, "-C", work, ...args], {
          env: options.env,
          timeoutMs: options.timeoutMs,
          signal: job.signal,
          label: `git ${label}`,
        });
      try {
        await git(["init", "-q"], "init");
        await job.materialize(work);
        await git(["add", "-A", "-f", "."], "add");
        const tree = (await git(["write-tree"], "write-tree")).trim();
        const ref = `refs/heads/${branch}`;
        const remote = (await git(["ls-remote", "--", target, ref], "ls-remote")).trim();
        const parent: string[] = [];
        if (remote !== "") {
          await git(["fetch", "-q", "--depth", "1", "--", target, ref], "fetch");
          parent.push("-p", (await git(["rev-parse", "FETCH_HEAD"], "rev-parse")).trim());
        }
        const commit = (
          await git(["commit-tree", tree, ...parent, "-m", deliveryCommitMessage(job).trimEnd()], "commit-tree")
        ).trim();
        await git(["push", "-q", "--", target, `${commit}:${ref}`], "push");
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}
