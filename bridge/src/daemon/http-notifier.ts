import { createHmac } from "node:crypto";
import { appendFile } from "node:fs/promises";
import { toJson } from "@bufbuild/protobuf";
import { EventSchema, type Event } from "@mottainai/proto";
import type { Logger } from "pino";
import { backoffDelay, sleep } from "../backoff.js";
import { eventText } from "./event-text.js";
import type { Notifier } from "./notifier.js";

/** Options of {@link createHttpNotifier}. */
export interface HttpNotifierOptions {
  name: string;
  /** "webhook": `{event, text}` JSON with a signature; "slack": Slack/Mattermost `{text}`. */
  kind: "webhook" | "slack";
  url: string;
  secret: string;
  attempts: number;
  backoffMs: number;
  deadLetter: string;
  timeoutMs: number;
  template?: string;
  webUrl: string;
  logger: Logger;
}

/** `sha256=<hex HMAC-SHA256 of body with secret>`: the X-Mottainai-Signature header. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * POSTs each event. A webhook's body is `{"event": <Event as proto JSON>, "text": <line>}` with
 * headers X-Mottainai-Event (type), X-Mottainai-Sequence and, with a secret,
 * X-Mottainai-Signature: sha256=<HMAC-SHA256 hex of the body>; a Slack-compatible incoming
 * webhook gets `{"text": <line>}`. Anything but a 2xx answer (or no answer within timeoutMs) is
 * retried up to `attempts` in all, backoffMs doubling (at most 5 min, jittered); after the last
 * one the request is appended as one JSON line to the dead-letter file
 * (`{time, notifier, url, attempts, error, headers, body}`) and notify() resolves, so that one
 * dead endpoint does not stop the other notifiers.
 */
export function createHttpNotifier(o: HttpNotifierOptions): Notifier {
  const abort = new AbortController();
  return {
    name: o.name,
    async notify(event: Event) {
      const text = eventText(event, o.webUrl, o.template);
      const body = o.kind === "slack" ? JSON.stringify({ text }) : JSON.stringify({ event: toJson(EventSchema, event), text });
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "x-mottainai-event": event.type,
        "x-mottainai-sequence": String(event.sequence),
      };
      if (o.secret) headers["x-mottainai-signature"] = signature(o.secret, body);
      let error = "";
      for (let attempt = 1; attempt <= o.attempts; attempt++) {
        if (attempt > 1) await sleep(backoffDelay(attempt - 1, { initialMs: o.backoffMs, maxMs: 300_000 }), abort.signal);
        if (abort.signal.aborted) throw new Error(`${o.name}: closed`);
        try {
          const res = await fetch(o.url, {
            method: "POST",
            headers,
            body,
            signal: AbortSignal.any([abort.signal, AbortSignal.timeout(o.timeoutMs)]),
          });
          await res.arrayBuffer().catch(() => undefined);
          if (res.ok) return;
          error = `HTTP ${res.status}`;
        } catch (err) {
          error = (err as Error).message;
        }
        o.logger.warn({ notifier: o.name, sequence: String(event.sequence), attempt, error }, "webhook delivery failed");
      }
      const letter = { time: new Date().toISOString(), notifier: o.name, url: o.url, attempts: o.attempts, error, headers, body };
      if (o.deadLetter) await appendFile(o.deadLetter, `${JSON.stringify(letter)}\n`, { mode: 0o600 });
      o.logger.error(
        { notifier: o.name, sequence: String(event.sequence), error, deadLetter: o.deadLetter || undefined },
        "webhook gave up after its last attempt",
      );
    },
    async close() {
      abort.abort();
    },
  };
}
