import { toJson } from "@bufbuild/protobuf";
import { DeliverySchema, DeliveryState, NamespacePublisherSchema, PublisherKind, PublisherService } from "@mottainai/proto";
import { Command, Option, UsageError } from "clipanion";
import { formatTimestamp, orNone } from "../format.js";
import { requireField } from "../require-field.js";
import { MottainaiCommand, integerOption, jsonOption, requiredArgument } from "./mottainai-command.js";

const category = "Namespaces";

const kindWords: Record<PublisherKind, string> = {
  [PublisherKind.UNSPECIFIED]: "unknown",
  [PublisherKind.RSYNC]: "rsync",
  [PublisherKind.GIT]: "git",
};

const stateWords: Record<DeliveryState, string> = {
  [DeliveryState.UNSPECIFIED]: "unknown",
  [DeliveryState.PENDING]: "pending",
  [DeliveryState.RUNNING]: "running",
  [DeliveryState.SUCCEEDED]: "succeeded",
  [DeliveryState.FAILED]: "failed",
  [DeliveryState.SUPERSEDED]: "superseded",
};

/** A publisher kind as a word: rsync, git. */
export function publisherKindWord(kind: PublisherKind): string {
  return kindWords[kind] ?? String(kind);
}

/** A delivery state as a word: pending, running, succeeded, failed, superseded. */
export function deliveryStateWord(state: DeliveryState): string {
  return stateWords[state] ?? String(state);
}

/** The first line of an error, at most 80 characters, for a table cell. */
function shortError(error: string): string {
  const line = error.split("\n").find((l) => l.trim() !== "") ?? "";
  return orNone(line.length > 80 ? `${line.slice(0, 79)}…` : line);
}

/** `mottainai namespace publisher add NAME KIND TARGET [--branch B] [--tag T] [--json]`. */
export class NamespacePublisherAddCommand extends MottainaiCommand {
  static override paths = [["namespace", "publisher", "add"]];
  static override usage = Command.Usage({
    category,
    description: "Deliver a namespace elsewhere every time a tag moves (rsync or git)",
    details:
      "KIND `rsync` copies the tagged revision with `rsync -a --delete --checksum` to TARGET: an absolute path on the server or `rsync://host[:port]/module/path`. KIND `git` commits it (one commit per delivered revision) and pushes it to `--branch` (default main) of TARGET: a repository URL or path; an empty bare repository is fine. The current revision of the tag is delivered at once. Targets on the server's own disk (paths, file:// URLs) are for admins. Failed deliveries are retried with backoff: see `mottainai namespace deliveries`. Prints the publisher's id.",
    examples: [
      [
        "Mirror the latest revision to an rsync daemon",
        "$0 namespace publisher add sabayon-repo rsync rsync://mirror.example.org/sabayon",
      ],
      [
        "Push the stable tag to a git branch",
        "$0 namespace publisher add site git git@example.org:site.git --branch gh-pages --tag stable",
      ],
    ],
  });

  name = requiredArgument("NAME");
  kind = requiredArgument("KIND");
  target = requiredArgument("TARGET");
  branch = Option.String("--branch", { description: "git only: the branch pushed to (default main)" });
  tag = Option.String("--tag", { description: "The tag followed (default latest)" });
  json = jsonOption();

  async run(): Promise<void> {
    const kind = this.kind === "rsync" ? PublisherKind.RSYNC : this.kind === "git" ? PublisherKind.GIT : undefined;
    if (kind === undefined) throw new UsageError(`KIND: expected rsync or git, got ${JSON.stringify(this.kind)}`);
    const { publisher } = await (
      await this.client(PublisherService)
    ).addPublisher({ namespace: this.name, kind, target: this.target, branch: this.branch ?? "", tag: this.tag ?? "" });
    const p = requireField(publisher, "publisher");
    if (this.json) this.output.json(toJson(NamespacePublisherSchema, p));
    else this.output.line(p.id);
  }
}

/** `mottainai namespace publisher list NAME [--json]`. */
export class NamespacePublisherListCommand extends MottainaiCommand {
  static override paths = [["namespace", "publisher", "list"]];
  static override usage = Command.Usage({ category, description: "List a namespace's publishers" });

  name = requiredArgument("NAME");
  json = jsonOption();

  async run(): Promise<void> {
    const { publishers } = await (await this.client(PublisherService)).listPublishers({ namespace: this.name });
    this.output.list(
      this.json,
      NamespacePublisherSchema,
      publishers,
      ["ID", "KIND", "TARGET", "BRANCH", "TAG", "CREATED"],
      (p) => [p.id, publisherKindWord(p.kind), p.target, orNone(p.branch), p.tag, formatTimestamp(p.createTime)],
    );
  }
}

/** `mottainai namespace publisher remove ID`: prints nothing. */
export class NamespacePublisherRemoveCommand extends MottainaiCommand {
  static override paths = [["namespace", "publisher", "remove"]];
  static override usage = Command.Usage({
    category,
    description: "Remove a publisher and its delivery history (a running delivery finishes)",
  });

  id = requiredArgument();

  async run(): Promise<void> {
    await (await this.client(PublisherService)).removePublisher({ id: this.id });
  }
}

/** `mottainai namespace deliveries NAME [--publisher ID] [--limit N] [--json]`: newest first. */
export class NamespaceDeliveriesCommand extends MottainaiCommand {
  static override paths = [["namespace", "deliveries"]];
  static override usage = Command.Usage({
    category,
    description: "List a namespace's deliveries, newest first",
    details:
      "STATE is pending (NEXT says when it runs; after a failed attempt that is the backoff), running, succeeded, failed (every attempt failed: `mottainai namespace delivery retry ID` queues it again) or superseded (a newer tag move replaced it).",
  });

  name = requiredArgument("NAME");
  publisher = Option.String("--publisher", { description: "Only this publisher's deliveries" });
  limit = integerOption("--limit", "At most this many (default 100, at most 1000)", 1);
  json = jsonOption();

  async run(): Promise<void> {
    const { deliveries } = await (
      await this.client(PublisherService)
    ).listDeliveries({ namespace: this.name, publisherId: this.publisher ?? "", limit: this.limit ?? 0 });
    this.output.list(
      this.json,
      DeliverySchema,
      deliveries,
      ["ID", "PUBLISHER", "REVISION", "TAG", "STATE", "ATTEMPTS", "NEXT", "UPDATED", "ERROR"],
      (d) => [
        d.id,
        d.publisherId,
        String(d.revision),
        d.tag,
        deliveryStateWord(d.state),
        String(d.attempts),
        formatTimestamp(d.nextAttemptTime),
        formatTimestamp(d.updateTime),
        shortError(d.error),
      ],
    );
  }
}

/** `mottainai namespace delivery retry ID [--json]`: queues a failed delivery again. */
export class NamespaceDeliveryRetryCommand extends MottainaiCommand {
  static override paths = [["namespace", "delivery", "retry"]];
  static override usage = Command.Usage({
    category,
    description: "Queue a failed delivery again now, with a fresh count of attempts",
    details: "Only the newest delivery of a publisher can be retried: an older one would overwrite a newer revision.",
  });

  id = requiredArgument();
  json = jsonOption();

  async run(): Promise<void> {
    const delivery = requireField(
      (await (await this.client(PublisherService)).retryDelivery({ id: this.id })).delivery,
      "delivery",
    );
    if (this.json) this.output.json(toJson(DeliverySchema, delivery));
    else this.output.line(`${delivery.id} ${deliveryStateWord(delivery.state)}`);
  }
}

/** Every `namespace publisher` and delivery command, for registration with the Cli. */
export const namespacePublisherCommands = [
  NamespacePublisherAddCommand,
  NamespacePublisherListCommand,
  NamespacePublisherRemoveCommand,
  NamespaceDeliveriesCommand,
  NamespaceDeliveryRetryCommand,
];
