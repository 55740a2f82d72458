import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import type { LibvirtConnection } from "./libvirt-executor.js";

/**
 * For tests: what is left of the domains whose names start with `prefix`: the domains libvirt
 * still lists, qemu processes running them, their libvirt logs, and files in `socketDir`.
 * Waits up to 2 s for asynchronous teardown to settle; [] when clean.
 */
export async function libvirtLeaks(connection: LibvirtConnection, prefix: string, socketDir?: string): Promise<string[]> {
  const hypervisor = await connection.hypervisor();
  let left: string[] = [];
  for (const deadline = Date.now() + 2000; ;) {
    left = [];
    for (const domain of await hypervisor.connectListAllDomains()) {
      const name = await domain.getName().catch(() => "");
      if (name.startsWith(prefix)) left.push(`domain ${name}`);
    }
    let processes = "";
    try {
      processes = execFileSync("pgrep", ["-af", `guest=${prefix}`], { encoding: "utf8" });
    } catch {
      // pgrep exits 1 when nothing matches.
    }
    for (const line of processes.split("\n")) if (line.includes("qemu-system")) left.push(`qemu process ${line.slice(0, 80)}`);
    const logDir = "/var/log/libvirt/qemu";
    for (const name of existsSync(logDir) ? readdirSync(logDir) : []) if (name.startsWith(prefix)) left.push(`${logDir}/${name}`);
    if (socketDir !== undefined && existsSync(socketDir))
      for (const name of readdirSync(socketDir)) left.push(`${socketDir}/${name}`);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}
