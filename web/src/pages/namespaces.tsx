import { useEffect, useState } from "preact/hooks";
import { NamespaceService, Visibility, type Namespace, type NamespaceRevision } from "@mottainai/proto";
import { client } from "../api.js";
import { errorText, when } from "../format.js";

/** Namespaces the visitor may read (public ones when anonymous), with links to each. */
export function NamespacesPage() {
  const [list, setList] = useState<Namespace[]>([]);
  const [error, setError] = useState("");
  useEffect(() => {
    client(NamespaceService)
      .listNamespaces({})
      .then(
        (r) => setList(r.namespaces),
        (e) => setError(errorText(e)),
      );
  }, []);
  return (
    <main>
      <h1>Namespaces</h1>
      {error && <p class="error">{error}</p>}
      <table>
        <thead>
          <tr>
            <th>name</th>
            <th>visibility</th>
            <th>head</th>
            <th>tags</th>
          </tr>
        </thead>
        <tbody>
          {list.map((n) => (
            <tr data-namespace={n.name}>
              <td>
                <a href={`/ns/${encodeURIComponent(n.name)}`}>{n.name}</a>
              </td>
              <td>{(Visibility[n.visibility] ?? "").toLowerCase()}</td>
              <td>{String(n.headRevision)}</td>
              <td>{n.tags.map((t) => `${t.name}→${t.revision}`).join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}

/** One namespace: tags and revisions; moving `latest` to an older revision is a rollback. */
export function NamespacePage({ name }: { name: string }) {
  const [ns, setNs] = useState<Namespace>();
  const [revisions, setRevisions] = useState<NamespaceRevision[]>([]);
  const [error, setError] = useState("");
  const [tick, setTick] = useState(0);
  const api = client(NamespaceService);
  useEffect(() => {
    api.getNamespace({ name }).then(
      (r) => setNs(r.namespace),
      (e) => setError(errorText(e)),
    );
    api.listRevisions({ name }).then(
      (r) => setRevisions(r.revisions),
      (e) => setError(errorText(e)),
    );
  }, [name, tick]);
  const latest = ns?.tags.find((t) => t.name === "latest")?.revision;
  const rollback = (number: bigint) => {
    if (!confirm(`Move tag "latest" of ${name} to revision ${number}?`)) return;
    api.setTag({ name, tag: "latest", ref: String(number) }).then(
      () => setTick((t) => t + 1),
      (e) => setError(errorText(e)),
    );
  };
  return (
    <main>
      <h1>
        Namespace <code>{name}</code>
      </h1>
      {error && <p class="error">{error}</p>}
      <p data-testid="tags">tags: {ns?.tags.map((t) => `${t.name}→${t.revision}`).join(", ")}</p>
      <table>
        <thead>
          <tr>
            <th>revision</th>
            <th>files</th>
            <th>bytes</th>
            <th>task</th>
            <th>created</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {revisions.map((r) => (
            <tr data-revision={String(r.number)}>
              <td>{String(r.number)}</td>
              <td>{String(r.fileCount)}</td>
              <td>{String(r.totalSize)}</td>
              <td>{r.taskId && <a href={`/tasks/${r.taskId}`}>{r.taskId}</a>}</td>
              <td>{when(r.createTime)}</td>
              <td>{latest === r.number ? "latest" : <button onClick={() => rollback(r.number)}>make latest</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}
