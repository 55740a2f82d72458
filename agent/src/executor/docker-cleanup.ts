import type Docker from "dockerode";
import type { Logger } from "pino";
import { AGENT_LABEL } from "./docker-executor.js";

/**
 * Removes the containers an earlier run of this agent left behind (crash, kill -9): every
 * container, running or not, whose `mottainai.agent` label is agentLabel. Called once when the
 * agent starts, before it accepts work, so no container outlives its task for long. Returns the
 * ids removed; a container that vanished meanwhile is not an error.
 */
export async function removeLeftoverContainers(docker: Docker, agentLabel: string, logger?: Logger): Promise<string[]> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${AGENT_LABEL}=${agentLabel}`] } });
  const removed: string[] = [];
  for (const info of containers) {
    try {
      await docker.getContainer(info.Id).remove({ force: true, v: true });
      removed.push(info.Id);
      logger?.info({ container: info.Id, labels: info.Labels }, "removed a container left by an earlier run");
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw err;
    }
  }
  return removed;
}
