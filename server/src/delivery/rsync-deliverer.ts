import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Deliverer, DeliveryJob } from "./deliverer.js";
import { runCommand } from "./run-command.js";

/** Options of {@link createRsyncDeliverer}. */
export interface RsyncDelivererOptions {
  /** Where staging directories are made (one per attempt, removed after it). */
  workDir: string;
  /** Longest an rsync run may take. */
  timeoutMs: number;
  /** The rsync binary; "rsync" (from PATH) by default. */
  rsync?: string;
}

/**
 * The rsync arguments that make target hold exactly the staging directory: archive mode,
 * deletion of what the revision does not have, content comparison (not size and time, which
 * differ for a fresh staging copy), published modes whatever the server's umask, missing parent
 * directories created, and updated files moved into place and extra files deleted only at the
 * end, so that a mirror's readers see the old or the new tree for as short a time as rsync
 * allows, never a missing file.
 */
export function rsyncArguments(staging: string, target: string): string[] {
  return [
    "-a",
    "--delete",
    "--checksum",
    "--delete-delay",
    "--delay-updates",
    "--mkpath",
    "--chmod=D755,F644",
    `${staging.replace(/\/+$/, "")}/`,
    target.endsWith("/") ? target : `${target}/`,
  ];
}

/**
 * Delivers with Debian's rsync to a local directory or an rsync daemon (rsync://host:port/module
 * /path): materializes the revision into a fresh staging directory (blob contents copied and
 * verified, nothing hard-linked), runs `rsync -a --delete --checksum staging/ target/`, and
 * removes the staging directory whatever happened.
 */
export function createRsyncDeliverer(options: RsyncDelivererOptions): Deliverer {
  return {
    async deliver(job: DeliveryJob): Promise<void> {
      const staging = await mkdtemp(join(options.workDir, "rsync-"));
      try {
        await job.materialize(staging);
        await runCommand(options.rsync ?? "rsync", rsyncArguments(staging, job.publisher.target), {
          timeoutMs: options.timeoutMs,
          signal: job.signal,
          label: "rsync",
        });
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    },
  };
}
