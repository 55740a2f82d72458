import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { NodeSchema, NodeState, QueueSlotsSchema, type Node } from "@mottainai/proto";
import type { NodeRecord } from "../store/node-store.js";

/** The wire form of a node; online comes from the live connection, runningTaskIds from the store. */
export function nodeToProto(n: NodeRecord, online: boolean, runningTaskIds: string[]): Node {
  const ts = (ms: number) => (ms ? timestampFromMs(ms) : undefined);
  return create(NodeSchema, {
    id: n.id,
    name: n.name,
    hostname: n.hostname,
    state: !online ? NodeState.OFFLINE : n.draining ? NodeState.DRAINING : NodeState.ONLINE,
    draining: n.draining,
    labels: n.labels,
    queues: n.queues.map((q) => create(QueueSlotsSchema, q)),
    executors: n.executors,
    capacity: n.capacity,
    runningTaskIds,
    lastHeartbeatTime: ts(n.lastHeartbeatTime),
    connectTime: ts(n.connectTime),
    createTime: ts(n.createTime),
    agentVersion: n.agentVersion,
  });
}
