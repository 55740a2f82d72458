import { parse as parseYaml } from "yaml";
import type { BridgeFilter } from "../create-bridge.js";

/** A notifier's settings, by type (YAML keys in snake_case). */
export type NotifierConfig =
  | {
      type: "irc";
      name: string;
      host: string;
      port: number;
      nick: string;
      channel: string;
      /** Least time between two lines sent (flood limit). Default 1000 ms. */
      floodIntervalMs: number;
      template?: string;
    }
  | {
      type: "webhook" | "slack";
      name: string;
      url: string;
      /** webhook: HMAC-SHA256 key of X-Mottainai-Signature ("" sends no signature). */
      secret: string;
      /** Attempts in all before the dead letter. Default 5. */
      attempts: number;
      /** First retry delay, doubling. Default 1000 ms. */
      backoffMs: number;
      /** JSONL file receiving what could not be delivered; "" drops it (logged). */
      deadLetter: string;
      /** Per-request timeout. Default 10 s. */
      timeoutMs: number;
      template?: string;
    }
  | { type: "exec"; name: string; command: string[]; timeoutMs: number; template?: string };

/** One route: events matching filter go to every notifier it names. */
export interface RouteConfig {
  filter: BridgeFilter;
  notify: string[];
}

/** The daemon's validated configuration. */
export interface DaemonConfig {
  servers: string[];
  token: string;
  /** Cursor file (FileCursorStore). */
  cursorFile: string;
  /** Base URL of links in messages (`{url}`). Default the first server. */
  webUrl: string;
  /** Server-side filter of the one subscription (the routes filter again). */
  filter: BridgeFilter;
  notifiers: Map<string, NotifierConfig>;
  routes: RouteConfig[];
}

/** A configuration error; the message names the key. */
export class BridgeConfigError extends Error {}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Parses and validates a mottainai-bridge YAML configuration (the README has an example).
 * `readFile` resolves `token_file`. Throws BridgeConfigError naming the offending key, e.g.
 * `notifiers.irc.channel: required (a string)`.
 */
export function parseBridgeConfig(text: string, readFile: (path: string) => string): DaemonConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new BridgeConfigError(`not valid YAML: ${(err as Error).message}`);
  }
  if (!isObj(doc)) throw new BridgeConfigError("the configuration must be a mapping");
  const fail = (key: string, why: string): never => {
    throw new BridgeConfigError(`${key}: ${why}`);
  };
  const known = (o: Obj, key: string, keys: string[]) => {
    for (const k of Object.keys(o))
      if (!keys.includes(k)) fail(key ? `${key}.${k}` : k, `unknown key (known: ${keys.join(", ")})`);
  };
  const str = (o: Obj, key: string, path: string, fallback?: string): string => {
    const v = o[key];
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== "string" || v === "") return fail(path, "required (a string)");
    return v;
  };
  const num = (o: Obj, key: string, path: string, fallback: number, min: number): number => {
    const v = o[key] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) return fail(path, `must be an integer ≥ ${min}`);
    return v;
  };
  const strList = (v: unknown, path: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string" || s === "")) return fail(path, "must be a list of strings");
    return v as string[];
  };
  const filter = (v: unknown, path: string): BridgeFilter => {
    if (v === undefined) return {};
    if (!isObj(v)) return fail(path, "must be a mapping");
    known(v, path, ["types", "subject_ids", "owner_id", "namespace", "pipeline_id"]);
    return {
      types: strList(v.types, `${path}.types`),
      subjectIds: strList(v.subject_ids, `${path}.subject_ids`),
      ownerId: v.owner_id === undefined ? "" : str(v, "owner_id", `${path}.owner_id`),
      namespace: v.namespace === undefined ? "" : str(v, "namespace", `${path}.namespace`),
      pipelineId: v.pipeline_id === undefined ? "" : str(v, "pipeline_id", `${path}.pipeline_id`),
    };
  };

  known(doc, "", ["servers", "token", "token_file", "cursor", "web_url", "filter", "notifiers", "routes"]);
  const servers = strList(doc.servers, "servers");
  if (servers.length === 0) fail("servers", "at least one server URL is required");
  for (const [i, s] of servers.entries()) if (!/^https?:\/\//.test(s)) fail(`servers[${i}]`, `${s} is not an http(s) URL`);
  let token: string;
  if (doc.token !== undefined && doc.token_file !== undefined) fail("token_file", "give token or token_file, not both");
  if (doc.token_file !== undefined) {
    const path = str(doc, "token_file", "token_file");
    try {
      token = readFile(path).trim();
    } catch (err) {
      return fail("token_file", `cannot read ${path}: ${(err as Error).message}`);
    }
  } else token = str(doc, "token", "token");

  if (!isObj(doc.notifiers) || Object.keys(doc.notifiers).length === 0)
    fail("notifiers", "required (a mapping of name to notifier)");
  const notifiers = new Map<string, NotifierConfig>();
  for (const [name, raw] of Object.entries(doc.notifiers as Obj)) {
    const path = `notifiers.${name}`;
    if (!isObj(raw)) fail(path, "must be a mapping");
    const n = raw as Obj;
    const type = str(n, "type", `${path}.type`);
    const template = n.template === undefined ? undefined : str(n, "template", `${path}.template`);
    switch (type) {
      case "irc":
        known(n, path, ["type", "host", "port", "nick", "channel", "flood_interval_ms", "template"]);
        notifiers.set(name, {
          type,
          name,
          host: str(n, "host", `${path}.host`),
          port: num(n, "port", `${path}.port`, 6667, 1),
          nick: str(n, "nick", `${path}.nick`, "mottainai"),
          channel: str(n, "channel", `${path}.channel`),
          floodIntervalMs: num(n, "flood_interval_ms", `${path}.flood_interval_ms`, 1000, 0),
          template,
        });
        if (!/^[#&]/.test((notifiers.get(name) as { channel: string }).channel))
          fail(`${path}.channel`, "must start with # or &");
        break;
      case "webhook":
      case "slack": {
        known(n, path, ["type", "url", "secret", "attempts", "backoff_ms", "dead_letter", "timeout_ms", "template"]);
        const url = str(n, "url", `${path}.url`);
        if (!/^https?:\/\//.test(url)) fail(`${path}.url`, `${url} is not an http(s) URL`);
        notifiers.set(name, {
          type,
          name,
          url,
          secret: n.secret === undefined ? "" : str(n, "secret", `${path}.secret`),
          attempts: num(n, "attempts", `${path}.attempts`, 5, 1),
          backoffMs: num(n, "backoff_ms", `${path}.backoff_ms`, 1000, 0),
          deadLetter: n.dead_letter === undefined ? "" : str(n, "dead_letter", `${path}.dead_letter`),
          timeoutMs: num(n, "timeout_ms", `${path}.timeout_ms`, 10_000, 1),
          template,
        });
        break;
      }
      case "exec": {
        known(n, path, ["type", "command", "timeout_ms", "template"]);
        const command = strList(n.command, `${path}.command`);
        if (command.length === 0) fail(`${path}.command`, "required (the program and its arguments, a list)");
        notifiers.set(name, { type, name, command, timeoutMs: num(n, "timeout_ms", `${path}.timeout_ms`, 60_000, 1), template });
        break;
      }
      default:
        fail(`${path}.type`, `unknown notifier type ${JSON.stringify(type)} (irc, webhook, slack, exec)`);
    }
  }

  if (!Array.isArray(doc.routes) || doc.routes.length === 0) fail("routes", "required (a list of {filter, notify})");
  const routes = (doc.routes as unknown[]).map((raw, i): RouteConfig => {
    const path = `routes[${i}]`;
    if (!isObj(raw)) return fail(path, "must be a mapping");
    known(raw, path, ["filter", "notify"]);
    const notify = strList(raw.notify, `${path}.notify`);
    if (notify.length === 0) fail(`${path}.notify`, "required (names of notifiers)");
    for (const [j, name] of notify.entries()) {
      if (!notifiers.has(name)) fail(`${path}.notify[${j}]`, `no notifier named ${name}`);
    }
    return { filter: filter(raw.filter, `${path}.filter`), notify };
  });

  return {
    servers,
    token,
    cursorFile: str(doc, "cursor", "cursor"),
    webUrl: (doc.web_url === undefined ? servers[0]! : str(doc, "web_url", "web_url")).replace(/\/+$/, ""),
    filter: filter(doc.filter, "filter"),
    notifiers,
    routes,
  };
}
