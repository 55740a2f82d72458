import type { PublisherKind } from "../store/delivery-store.js";

/** A publisher target or branch that cannot be used; the message names the field and says why. */
export class PublisherTargetError extends Error {
  override name = "PublisherTargetError";
}

/** A checked publisher target. */
export interface CheckedTarget {
  target: string;
  /**
   * True when the target is on the server's own file system (a path or a file:// URL): writing
   * there is writing as the server process, so only admins may add such publishers.
   */
  local: boolean;
}

/** The branch git publishers push to when none is given. */
export const DEFAULT_GIT_BRANCH = "main";

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const SCP_LIKE = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/\s-][^\s]*$/;

/**
 * Checks a target for kind and says whether it is local. Accepted — rsync: an absolute path or
 * rsync://host[:port]/module[/path] (no password in the URL); git: an absolute path, a
 * file://, https://, http://, ssh:// or git:// URL, or an scp-like user@host:path. Everything
 * else is refused (relative paths, options, git's ext:: and fd:: transports, control characters).
 */
export function checkPublisherTarget(kind: PublisherKind, target: string): CheckedTarget {
  const fail = (why: string): never => {
    throw new PublisherTargetError(`target: ${why}, got ${JSON.stringify(target)}`);
  };
  if (target === "") fail("a target is required");
  if (CONTROL.test(target)) fail("a target must not contain control characters");
  let decoded = target;
  try {
    decoded = decodeURIComponent(target);
  } catch {
    fail("a target must not contain malformed %-escapes");
  }
  if (decoded.split("/").includes("..")) fail('a target must not contain ".."');
  if (target.startsWith("/")) return { target, local: true };
  if (kind === "git" && SCP_LIKE.test(target)) return { target, local: false };
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return fail(
      kind === "rsync"
        ? "expected an absolute path or rsync://host[:port]/module[/path]"
        : "expected an absolute path, a file, https, http, ssh or git URL, or user@host:path",
    );
  }
  if (url.password) fail("put no password in the URL");
  if (kind === "rsync") {
    if (url.protocol !== "rsync:") fail("expected an absolute path or rsync://host[:port]/module[/path]");
    if (!url.hostname) fail("an rsync:// URL needs a host");
    if (url.pathname.split("/").filter((s) => s !== "").length === 0) fail("an rsync:// URL needs a module");
    if (url.search || url.hash) fail("an rsync:// URL has no query or fragment");
    return { target, local: false };
  }
  switch (url.protocol) {
    case "file:":
      return { target, local: true };
    case "https:":
    case "http:":
    case "ssh:":
    case "git:":
      if (!url.hostname) fail(`a ${url.protocol}// URL needs a host`);
      return { target, local: false };
    default:
      return fail("expected an absolute path, a file, https, http, ssh or git URL, or user@host:path");
  }
}

/** Checks a git branch name (git check-ref-format rules, conservatively); returns it. */
export function checkGitBranch(branch: string): string {
  const ok =
    /^[A-Za-z0-9._/-]+$/.test(branch) &&
    !branch.startsWith("-") &&
    !branch.startsWith("/") &&
    !branch.endsWith("/") &&
    !branch.endsWith(".") &&
    !branch.endsWith(".lock") &&
    !branch.includes("..") &&
    !branch.includes("//") &&
    !branch.split("/").some((s) => s.startsWith("."));
  if (!ok) throw new PublisherTargetError(`branch: not a valid git branch name, got ${JSON.stringify(branch)}`);
  return branch;
}
