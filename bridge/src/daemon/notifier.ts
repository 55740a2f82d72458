import type { Event } from "@mottainai/proto";

/**
 * Sends events somewhere. notify() resolves once the event is handed over (a line written to
 * the IRC socket, a 2xx answer, a command that exited 0, or a dead letter written) and rejects
 * when it should be retried (the bridge retries it with backoff). Calls come one at a time.
 * close() stops it; idempotent.
 */
export interface Notifier {
  readonly name: string;
  notify(event: Event): Promise<void>;
  close(): Promise<void>;
}
