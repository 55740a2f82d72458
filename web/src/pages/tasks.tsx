import { useEffect, useState } from "preact/hooks";
import { EventService, TaskService, TaskStatus, type Task } from "@mottainai/proto";
import { client } from "../api.js";
import { errorText, resultName, statusName, when } from "../format.js";

const FILTERS: [string, TaskStatus[]][] = [
  ["all", []],
  ["waiting", [TaskStatus.WAITING]],
  ["running", [TaskStatus.SETUP, TaskStatus.RUNNING, TaskStatus.STOP]],
  ["done", [TaskStatus.DONE]],
  ["stopped", [TaskStatus.STOPPED]],
];

/** The task list, newest first, filtered by status, reloaded on every task event. */
export function TasksPage() {
  const [filter, setFilter] = useState("all");
  const [tasks, setTasks] = useState<Task[]>([]);
  const [error, setError] = useState("");
  const [tick, setTick] = useState(0);

  useEffect(() => {
    const statuses = FILTERS.find(([n]) => n === filter)?.[1] ?? [];
    client(TaskService)
      .listTasks({ pageSize: 100, statuses })
      .then(
        (r) => (setTasks(r.tasks), setError("")),
        (e) => setError(errorText(e)),
      );
  }, [filter, tick]);

  useEffect(() => {
    const abort = new AbortController();
    void (async () => {
      try {
        // The replay is skipped over by its time: only events after the page opened reload.
        const opened = Date.now() - 1000;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const stream = client(EventService).subscribe({ types: ["task."], fromSequence: 0n }, { signal: abort.signal });
        for await (const { event } of stream) {
          if (!event?.time || Number(event.time.seconds) * 1000 < opened) continue;
          clearTimeout(timer);
          timer = setTimeout(() => setTick((t) => t + 1), 100);
        }
      } catch {
        // anonymous visitors and closed streams: no live updates
      }
    })();
    return () => abort.abort();
  }, []);

  return (
    <main>
      <h1>Tasks</h1>
      <div class="toolbar" role="group" aria-label="status filter">
        {FILTERS.map(([name]) => (
          <button aria-pressed={filter === name} onClick={() => setFilter(name)}>
            {name}
          </button>
        ))}
      </div>
      {error && <p class="error">{error}</p>}
      <table>
        <thead>
          <tr>
            <th>id</th>
            <th>name</th>
            <th>status</th>
            <th>result</th>
            <th>queue</th>
            <th>created</th>
          </tr>
        </thead>
        <tbody>
          {tasks.map((t) => (
            <tr data-task={t.id}>
              <td>
                <a href={`/tasks/${t.id}`}>{t.id}</a>
              </td>
              <td>{t.spec?.name}</td>
              <td class={`status ${statusName(t.status)}`}>{statusName(t.status)}</td>
              <td>{resultName(t.result)}</td>
              <td>{t.spec?.queue}</td>
              <td>{when(t.createTime)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}
