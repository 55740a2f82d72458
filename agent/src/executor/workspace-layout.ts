import { isAbsolute, relative, resolve, sep } from "node:path";
import type { TaskSpec } from "@mottainai/proto";

/** Where a task's paths are inside its workspace, each relative to the workspace root ("" for the root). */
export interface WorkspaceLayout {
  /** `directory`: the script's working directory. */
  directory: string;
  /** `artefact_path` (default "artefacts"). */
  artefactPath: string;
  /** `storage_path` (default "storage"). */
  storagePath: string;
}

/**
 * The task's `directory`, `artefact_path` and `storage_path` resolved inside `workspace`. Throws
 * an Error naming the field when one is absolute, contains NUL or leaves the workspace, before
 * anything is created. Every executor lays out its workspace with this, so the rules are the same
 * on the host, in a container and in a VM.
 */
export function workspaceLayout(
  workspace: string,
  spec: Pick<TaskSpec, "directory" | "artefactPath" | "storagePath">,
): WorkspaceLayout {
  return {
    directory: relativeInside(workspace, "directory", spec.directory),
    artefactPath: relativeInside(workspace, "artefact_path", spec.artefactPath || "artefacts"),
    storagePath: relativeInside(workspace, "storage_path", spec.storagePath || "storage"),
  };
}

function relativeInside(root: string, field: string, value: string): string {
  if (value.includes("\0")) throw new Error(`${field}: must not contain NUL`);
  if (isAbsolute(value)) throw new Error(`${field}: must be a path relative to the workspace, got "${value}"`);
  const rel = relative(root, resolve(root, value));
  if (rel === ".." || rel.startsWith(`..${sep}`)) throw new Error(`${field}: must stay inside the workspace, got "${value}"`);
  return rel;
}
