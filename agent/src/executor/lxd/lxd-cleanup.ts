import type { Logger } from "pino";
import { LxdError, type LxdClient } from "./lxd-client.js";
import { lxdContainerPrefix } from "./lxd-executor.js";

/**
 * Removes the containers an earlier run of this agent left behind (crash, kill -9): force-stops
 * and deletes every instance whose name starts with `mottainai-<agentLabel>-`, running or not.
 * Called once when the agent starts, before it accepts work: it assumes none of them is in
 * use. Resolves with the names removed; an instance that vanished meanwhile is not an error.
 */
export async function removeLeftoverLxdContainers(client: LxdClient, agentLabel: string, logger?: Logger): Promise<string[]> {
  const prefix = lxdContainerPrefix(agentLabel);
  const urls = await client.request<string[]>("GET", "/1.0/instances");
  const names = urls.map((url) => decodeURIComponent(url.split("/").pop() ?? "")).filter((n) => n.startsWith(prefix));
  const removed: string[] = [];
  for (const name of names) {
    const path = `/1.0/instances/${encodeURIComponent(name)}`;
    try {
      await client.operation("PUT", `${path}/state`, { action: "stop", force: true, timeout: -1 }).catch((err: unknown) => {
        if (err instanceof LxdError && err.status === 404) throw err;
      });
      await client.operation("DELETE", path);
      removed.push(name);
      logger?.info({ container: name }, "removed an lxd container left by an earlier run");
    } catch (err) {
      if (!(err instanceof LxdError && err.status === 404)) throw err;
    }
  }
  return removed;
}
