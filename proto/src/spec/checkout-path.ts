/** The original's rule for `directory`, `artefact_path` and `storage_path`: paths inside the checkout. */

import { quote } from "./field-readers.js";

/**
 * `path` relative to the checkout root, as the original read it: it joined the value onto the
 * checked-out source (`path.Join(checkout, directory)`), so a leading `/` means "from the
 * checkout root" and `/` alone is the root itself. Leading slashes are dropped (`/sub/dir` →
 * `sub/dir`, `/iso` → `iso`) and `/` gives `.`; a path without a leading `/` is returned as is.
 */
export function checkoutRelativePath(path: string): string {
  if (!path.startsWith("/")) return path;
  const rest = path.replace(/^\/+/, "");
  return rest === "" ? "." : rest;
}

/**
 * Why `path` cannot name a place inside the checkout, or `undefined` when it can: a NUL
 * character, or `..` segments that climb above the checkout root once
 * {@link checkoutRelativePath} has been applied (`a/../b` stays inside and is accepted).
 */
export function checkoutPathProblem(path: string): string | undefined {
  if (path.includes("\0")) return "must not contain a NUL character";
  let depth = 0;
  for (const segment of checkoutRelativePath(path).split("/")) {
    if (segment === "..") depth -= 1;
    else if (segment !== "" && segment !== ".") depth += 1;
    if (depth < 0) return `must stay inside the checkout, got ${quote(path)}`;
  }
  return undefined;
}
