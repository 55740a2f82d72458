import type { Logger } from "pino";
import { createBridge, type Bridge } from "../create-bridge.js";
import { FileCursorStore } from "../cursor-store.js";
import type { DaemonConfig, NotifierConfig } from "./bridge-config.js";
import { createExecNotifier } from "./exec-notifier.js";
import { createHttpNotifier } from "./http-notifier.js";
import { createIrcNotifier } from "./irc-notifier.js";
import type { Notifier } from "./notifier.js";
import { routeMatches } from "./route-match.js";

/** What the daemon needs besides its configuration. */
export interface DaemonDeps {
  logger: Logger;
  /** Environment of exec notifiers' commands. */
  env: Record<string, string | undefined>;
}

/** A running mottainai-bridge. */
export interface RunningDaemon {
  bridge: Bridge;
  /** Resolves when the bridge stops (after close()). */
  done: Promise<void>;
  close(): Promise<void>;
}

function createNotifier(c: NotifierConfig, webUrl: string, deps: DaemonDeps): Notifier {
  const logger = deps.logger.child({ notifier: c.name });
  switch (c.type) {
    case "irc":
      return createIrcNotifier({ ...c, webUrl, logger });
    case "webhook":
    case "slack":
      return createHttpNotifier({ ...c, kind: c.type, webUrl, logger });
    case "exec":
      return createExecNotifier({ ...c, webUrl, env: deps.env });
  }
}

/**
 * Runs mottainai-bridge: one subscription (config.filter on the server) from the cursor file,
 * each event handed to every notifier that a matching route names (once per notifier, even
 * when several routes match), and the cursor saved after every notifier is done with it, so a
 * killed daemon resumes with the event it was notifying (at-least-once). A notifier that
 * rejects is retried up to 10 times (1 s doubling to 1 min) before the event is logged and left.
 */
export function runDaemon(config: DaemonConfig, deps: DaemonDeps): RunningDaemon {
  const notifiers = [...config.notifiers.values()].map((c) => createNotifier(c, config.webUrl, deps));
  const bridge = createBridge({
    servers: config.servers,
    token: config.token,
    filter: config.filter,
    cursor: new FileCursorStore(config.cursorFile),
    handlerRetry: { attempts: 10, initialMs: 1000, maxMs: 60_000 },
    logger: deps.logger.child({ component: "bridge" }),
  });
  for (const notifier of notifiers) {
    const routes = config.routes.filter((r) => r.notify.includes(notifier.name));
    bridge.on("*", async (event) => {
      if (routes.some((r) => routeMatches(r.filter, event))) await notifier.notify(event);
    });
  }
  const done = bridge.start();
  return {
    bridge,
    done,
    async close() {
      await bridge.close();
      await Promise.all(notifiers.map((n) => n.close()));
    },
  };
}
