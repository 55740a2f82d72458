export {
  BridgeConfigError,
  parseBridgeConfig,
  type DaemonConfig,
  type NotifierConfig,
  type RouteConfig,
} from "./bridge-config.js";
export {
  DEFAULT_GAP_TEMPLATE,
  DEFAULT_TASK_TEMPLATE,
  DEFAULT_TEMPLATE,
  eventText,
  renderTemplate,
  templateValues,
} from "./event-text.js";
export { createExecNotifier, type ExecNotifierOptions } from "./exec-notifier.js";
export { createHttpNotifier, signature, type HttpNotifierOptions } from "./http-notifier.js";
export { createIrcNotifier, type IrcNotifierOptions } from "./irc-notifier.js";
export type { Notifier } from "./notifier.js";
export { routeMatches } from "./route-match.js";
export { runDaemon, type DaemonDeps, type RunningDaemon } from "./run-daemon.js";
