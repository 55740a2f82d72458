import { toJson } from "@bufbuild/protobuf";
import { type Node, NodeSchema, NodeService, NodeState } from "@mottainai/proto";
import { Command } from "clipanion";
import { NONE, formatTimestamp, nodeStateWord, orNone } from "../format.js";
import { MottainaiCommand, requiredArgument, jsonOption } from "./mottainai-command.js";

const category = "Nodes";

/** `mottainai node list [--json]`: every known node with its live state. */
export class NodeListCommand extends MottainaiCommand {
  static override paths = [["node", "list"]];
  static override usage = Command.Usage({
    category,
    description: "List build nodes",
    details: "QUEUES shows each queue the node serves as `queue:slots`; RUNNING counts its running tasks.",
  });

  json = jsonOption();

  async run(): Promise<void> {
    const { nodes } = await (await this.client(NodeService)).listNodes({});
    this.output.list(this.json, NodeSchema, nodes, ["NAME", "ID", "STATE", "QUEUES", "RUNNING", "LAST HEARTBEAT"], (node) => [
      node.name,
      node.id,
      nodeStateText(node),
      queuesText(node),
      String(node.runningTaskIds.length),
      formatTimestamp(node.lastHeartbeatTime),
    ]);
  }
}

/** `mottainai node show ID [--json]`: one node (by id or name) as `key: value` lines. */
export class NodeShowCommand extends MottainaiCommand {
  static override paths = [["node", "show"]];
  static override usage = Command.Usage({ category, description: "Show a build node (by id or name)" });

  id = requiredArgument();
  json = jsonOption();

  async run(): Promise<void> {
    const { node } = await (await this.client(NodeService)).getNode({ id: this.id });
    if (node === undefined) {
      throw new Error(`server returned no node for ${this.id}`);
    }
    if (this.json) {
      this.output.json(toJson(NodeSchema, node));
      return;
    }
    this.output.fields(nodeFields(node));
  }
}

/** The `key: value` view of `node show`; absent values are shown as "-". */
export function nodeFields(node: Node): [string, string][] {
  const labels = Object.entries(node.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${value}`);
  return [
    ["id", node.id],
    ["name", orNone(node.name)],
    ["hostname", orNone(node.hostname)],
    ["state", nodeStateText(node)],
    ["agent version", orNone(node.agentVersion)],
    ["capacity", String(node.capacity)],
    ["queues", queuesText(node)],
    ["executors", orNone(node.executors.join(","))],
    ["labels", orNone(labels.join(","))],
    ["running", orNone(node.runningTaskIds.join(","))],
    ["last heartbeat", formatTimestamp(node.lastHeartbeatTime)],
    ["connected", formatTimestamp(node.connectTime)],
    ["created", formatTimestamp(node.createTime)],
  ];
}

/** Base of the node commands that take one ID and call one RPC; they print nothing. */
abstract class NodeIdCommand extends MottainaiCommand {
  id = requiredArgument();
}

/** `mottainai node drain ID`: the node finishes its running work and takes no more. */
export class NodeDrainCommand extends NodeIdCommand {
  static override paths = [["node", "drain"]];
  static override usage = Command.Usage({ category, description: "Let a node finish its running tasks and send it no more" });

  async run(): Promise<void> {
    await (await this.client(NodeService)).drainNode({ id: this.id });
  }
}

/** `mottainai node resume ID`: undoes `node drain`. */
export class NodeResumeCommand extends NodeIdCommand {
  static override paths = [["node", "resume"]];
  static override usage = Command.Usage({ category, description: "Send a drained node work again" });

  async run(): Promise<void> {
    await (await this.client(NodeService)).resumeNode({ id: this.id });
  }
}

/** `mottainai node remove ID`: deletes a node and revokes its credential. */
export class NodeRemoveCommand extends NodeIdCommand {
  static override paths = [["node", "remove"]];
  static override usage = Command.Usage({ category, description: "Delete a node and revoke its credential" });

  async run(): Promise<void> {
    await (await this.client(NodeService)).deleteNode({ id: this.id });
  }
}

/** Every `node` command except `node token`, for registration with the Cli. */
export const nodeCommands = [NodeListCommand, NodeShowCommand, NodeDrainCommand, NodeResumeCommand, NodeRemoveCommand];

/** The state word, with "(draining)" for a drained node that is offline. */
function nodeStateText(node: Node): string {
  const word = nodeStateWord(node.state);
  return node.draining && node.state !== NodeState.DRAINING ? `${word} (draining)` : word;
}

/** Queues as `queue:slots`, comma-separated. */
function queuesText(node: Node): string {
  return node.queues.length === 0 ? NONE : node.queues.map(({ queue, slots }) => `${queue}:${slots}`).join(",");
}
