import irc from "irc-framework";
import type { Event } from "@mottainai/proto";
import type { Logger } from "pino";
import { backoffDelay, sleep } from "../backoff.js";
import { eventText } from "./event-text.js";
import type { Notifier } from "./notifier.js";

/** Options of {@link createIrcNotifier}. */
export interface IrcNotifierOptions {
  name: string;
  host: string;
  port: number;
  nick: string;
  channel: string;
  /** Least time between two PRIVMSG lines (flood limit). */
  floodIntervalMs: number;
  template?: string;
  webUrl: string;
  logger: Logger;
}

/**
 * Posts one PRIVMSG line per event to a channel through irc-framework: connects, registers
 * (NICK/USER; a nick in use gets "_" appended), joins, and after a lost connection reconnects
 * with a jittered backoff (1 s to 60 s) and joins again. Lines are at least floodIntervalMs
 * apart; notify() waits for the connection (so events queue up behind an IRC outage rather than
 * being lost) and resolves once the server answered a PING sent after the line (it processed
 * the line); a connection lost before that rejects, so the bridge sends the line again.
 */
export function createIrcNotifier(o: IrcNotifierOptions): Notifier {
  const client = new irc.Client({ auto_reconnect: false, ping_interval: 30, ping_timeout: 60 });
  const abort = new AbortController();
  let failures = 0;
  let nextSlot = 0;
  let joined = false;
  let wake: (() => void) | undefined;
  const ready = async () => {
    while (!joined && !abort.signal.aborted) await new Promise<void>((r) => (wake = r));
  };
  const connect = () => client.connect({ host: o.host, port: o.port, nick: o.nick, username: o.nick, gecos: "mottainai bridge" });

  client.on("registered", () => {
    failures = 0;
    client.join(o.channel);
  });
  client.on("join", (e: { nick: string; channel: string }) => {
    if (e.nick === client.user.nick && e.channel.toLowerCase() === o.channel.toLowerCase()) {
      joined = true;
      o.logger.info({ channel: o.channel, nick: e.nick }, "joined the IRC channel");
      wake?.();
    }
  });
  // Another client holds the nick (or it is too long for the server): try a variant that
  // fits in 9 characters, the RFC 2812 minimum every server accepts.
  const otherNick = () => client.changeNick(`${o.nick.slice(0, 6)}${Math.floor(Math.random() * 1000)}`);
  client.on("nick in use", otherNick);
  client.on("nick invalid", otherNick);
  client.on("raw", (e: { line: string; from_server: boolean }) =>
    o.logger.trace({ line: e.line.trimEnd(), from: e.from_server ? "server" : "bridge" }, "irc"),
  );
  client.on("close", () => {
    joined = false;
    if (abort.signal.aborted) return;
    failures++;
    const delay = backoffDelay(failures, { initialMs: 1000, maxMs: 60_000 });
    o.logger.warn({ host: o.host, port: o.port, delay }, "IRC connection lost; reconnecting");
    void sleep(delay, abort.signal).then(() => abort.signal.aborted || connect());
  });
  connect();

  // A line written to the socket may still sit unread in the server's input buffer (ngircd
  // reads ahead and works through it at its own pace); a PING after it comes back only once the
  // server processed everything before it, so a resolved notify() is a line the channel got.
  let pings = 0;
  const pongs = new Map<string, () => void>();
  client.on("pong", (e: { message: string }) => pongs.get(e.message)?.());
  const confirmed = () =>
    new Promise<void>((resolve, reject) => {
      const token = `mb${++pings}`;
      const fail = (why: string) => () => {
        pongs.delete(token);
        client.off("close", closed);
        clearTimeout(timer);
        reject(new Error(`IRC line not confirmed: ${why}`));
      };
      const closed = fail("the connection closed");
      const timer = setTimeout(fail("no PONG within 30 s"), 30_000);
      pongs.set(token, () => {
        pongs.delete(token);
        client.off("close", closed);
        clearTimeout(timer);
        resolve();
      });
      client.once("close", closed);
      client.ping(token);
    });

  let chain: Promise<void> = Promise.resolve();
  return {
    name: o.name,
    notify(event: Event) {
      const sent = chain.then(async () => {
        await ready();
        const wait = nextSlot - Date.now();
        if (wait > 0) await sleep(wait, abort.signal);
        await ready();
        if (abort.signal.aborted) throw new Error("the IRC notifier is closed");
        client.say(o.channel, eventText(event, o.webUrl, o.template));
        nextSlot = Date.now() + o.floodIntervalMs;
        await confirmed();
      });
      chain = sent.catch(() => undefined);
      return sent;
    },
    async close() {
      if (abort.signal.aborted) return;
      abort.abort();
      wake?.();
      if (client.connected) client.quit("mottainai-bridge stopping");
    },
  };
}
