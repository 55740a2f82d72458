import { readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { domainPrefix } from "./libvirt-domain-xml.js";
import { defaultQemuLogDir, destroyDomain, runSocketDirPrefix, type LibvirtConnection } from "./libvirt-executor.js";

/** Options of removeLeftoverDomains. */
export interface LibvirtCleanupOptions {
  /** The executors' `socketDir`, holding the per-run socket directories. Default the system's temporary directory. */
  socketDir?: string;
  /** libvirt's per-domain log directory. Default defaultQemuLogDir(connection.uri). */
  qemuLogDir?: string;
  logger?: Logger;
}

/**
 * Removes what an earlier run of this agent left behind (crash, kill -9): destroys (and
 * undefines, when persistent) every domain whose name starts with `mottainai-<agentLabel>-`,
 * removes their libvirt logs and the agent's per-run socket directories. The scratch disks live
 * beside the workspaces, which the agent clears at start. Called once when the agent starts,
 * before it accepts work: it assumes none of this agent's VMs is in use. Resolves with the
 * names of the domains removed.
 */
export async function removeLeftoverDomains(
  connection: LibvirtConnection,
  agentLabel: string,
  options: LibvirtCleanupOptions = {},
): Promise<string[]> {
  const hypervisor = await connection.hypervisor();
  const prefix = domainPrefix(agentLabel);
  const names: string[] = [];
  for (const domain of await hypervisor.connectListAllDomains()) {
    try {
      const name = await domain.getName();
      if (name.startsWith(prefix)) names.push(name);
    } catch {
      // Gone meanwhile.
    }
  }
  const logDir = options.qemuLogDir ?? defaultQemuLogDir(connection.uri);
  for (const name of names) {
    await destroyDomain(hypervisor, name);
    if (logDir !== undefined) await rm(join(logDir, `${name}.log`), { force: true });
    options.logger?.info({ domain: name }, "removed a VM left by an earlier run");
  }
  const socketDir = options.socketDir ?? tmpdir();
  const runDirs = await readdir(socketDir).catch(() => [] as string[]);
  for (const name of runDirs.filter((n) => n.startsWith(runSocketDirPrefix(agentLabel))))
    await rm(join(socketDir, name), { recursive: true, force: true });
  return names;
}
