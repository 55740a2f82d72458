import { toJson } from "@bufbuild/protobuf";
import { type Event, EventSchema, EventService } from "@mottainai/proto";
import { Command, Option } from "clipanion";
import { formatTimestamp, orNone } from "../format.js";
import { MottainaiCommand, integerOption, jsonOption } from "./mottainai-command.js";

/** `mottainai events tail [--from SEQ] [--type PREFIX]... [--json]`: replays, then streams events until Ctrl-C. */
export class EventsTailCommand extends MottainaiCommand {
  static override paths = [["events", "tail"]];
  static override usage = Command.Usage({
    category: "Events",
    description: "Stream server events until Ctrl-C",
    details:
      "Replays the stored events after sequence `--from` (default 0: every event kept), then streams new ones. Each line is `SEQ TIME TYPE SUBJECT`; with `--json`, one JSON object per line.",
    examples: [["Task events after sequence 1200", "$0 events tail --from 1200 --type task."]],
  });

  from = integerOption("--from", "Replay events after this sequence (default 0: all kept)");
  types = Option.Array("--type", [], { description: "Only events whose type starts with this prefix (repeatable)" });
  json = jsonOption();

  async run(): Promise<void> {
    const client = await this.client(EventService);
    const stream = client.subscribe({ fromSequence: BigInt(this.from ?? 0), types: this.types });
    for await (const { event } of stream) {
      if (event === undefined) {
        continue;
      }
      if (this.json) {
        this.output.jsonLine(toJson(EventSchema, event));
      } else {
        this.output.line(eventLine(event));
      }
    }
  }
}

/** The human line of an event: `SEQ TIME TYPE SUBJECT`. */
export function eventLine(event: Event): string {
  return `${event.sequence} ${formatTimestamp(event.time)} ${orNone(event.type)} ${orNone(event.subjectId)}`;
}

/** Every `events` command, for registration with the Cli. */
export const eventsCommands = [EventsTailCommand];
