import { useEffect, useState } from "preact/hooks";
import { NodeService, NodeState, type Node } from "@mottainai/proto";
import { client } from "../api.js";
import { errorText, when } from "../format.js";

/** Registered agents: state, capacity, queues, running tasks; drain and resume. */
export function NodesPage() {
  const [nodes, setNodes] = useState<Node[]>([]);
  const [error, setError] = useState("");
  const [tick, setTick] = useState(0);
  const api = client(NodeService);
  useEffect(() => {
    api.listNodes({}).then(
      (r) => (setNodes(r.nodes), setError("")),
      (e) => setError(errorText(e)),
    );
    const timer = setTimeout(() => setTick((t) => t + 1), 5000);
    return () => clearTimeout(timer);
  }, [tick]);
  const act = (f: () => Promise<unknown>) =>
    f().then(
      () => setTick((t) => t + 1),
      (e) => setError(errorText(e)),
    );
  return (
    <main>
      <h1>Nodes</h1>
      {error && <p class="error">{error}</p>}
      <table>
        <thead>
          <tr>
            <th>name</th>
            <th>state</th>
            <th>capacity</th>
            <th>queues</th>
            <th>running</th>
            <th>heartbeat</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr data-node={n.name}>
              <td>{n.name}</td>
              <td data-testid="node-state">
                {(NodeState[n.state] ?? "").toLowerCase()}
                {n.draining ? " (draining)" : ""}
              </td>
              <td>{n.capacity}</td>
              <td>{n.queues.map((q) => `${q.queue}×${q.slots}`).join(", ")}</td>
              <td>
                {n.runningTaskIds.map((id) => (
                  <a href={`/tasks/${id}`}>{id} </a>
                ))}
              </td>
              <td>{when(n.lastHeartbeatTime)}</td>
              <td>
                {n.draining ? (
                  <button onClick={() => act(() => api.resumeNode({ id: n.id }))}>resume</button>
                ) : (
                  <button onClick={() => act(() => api.drainNode({ id: n.id }))}>drain</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}
