import { spawn } from "node:child_process";
import { toJson } from "@bufbuild/protobuf";
import { EventSchema, type Event } from "@mottainai/proto";
import { eventText } from "./event-text.js";
import type { Notifier } from "./notifier.js";

/** Options of {@link createExecNotifier}. */
export interface ExecNotifierOptions {
  name: string;
  /** Program and arguments (no shell). */
  command: string[];
  timeoutMs: number;
  template?: string;
  webUrl: string;
  /** The environment the command starts from (main.ts passes the daemon's). */
  env: Record<string, string | undefined>;
}

/**
 * Runs the command once per event with the event as proto JSON (one line) on stdin and
 * MOTTAINAI_EVENT_TYPE, MOTTAINAI_EVENT_SEQUENCE, MOTTAINAI_EVENT_SUBJECT and
 * MOTTAINAI_EVENT_TEXT (the rendered template) in its environment: the operator's hook. Exit 0
 * is success; another exit, a signal or the timeout (then SIGKILL) rejects, so the bridge
 * retries the event.
 */
export function createExecNotifier(o: ExecNotifierOptions): Notifier {
  return {
    name: o.name,
    notify(event: Event) {
      return new Promise((resolve, reject) => {
        const child = spawn(o.command[0]!, o.command.slice(1), {
          stdio: ["pipe", "ignore", "pipe"],
          env: {
            ...o.env,
            MOTTAINAI_EVENT_TYPE: event.type,
            MOTTAINAI_EVENT_SEQUENCE: String(event.sequence),
            MOTTAINAI_EVENT_SUBJECT: event.subjectId,
            MOTTAINAI_EVENT_TEXT: eventText(event, o.webUrl, o.template),
          },
        });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
        const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs);
        child.once("error", (err) => {
          clearTimeout(timer);
          reject(new Error(`${o.name}: ${o.command[0]}: ${err.message}`));
        });
        child.once("close", (code, signal) => {
          clearTimeout(timer);
          if (code === 0) resolve();
          else reject(new Error(`${o.name}: ${o.command.join(" ")} ended with ${code ?? signal}: ${stderr.trim()}`));
        });
        child.stdin.on("error", () => undefined);
        child.stdin.end(`${JSON.stringify(toJson(EventSchema, event))}\n`);
      });
    },
    async close() {},
  };
}
