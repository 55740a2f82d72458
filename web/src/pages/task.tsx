import { useEffect, useState } from "preact/hooks";
import { EventService, TaskService, type Task } from "@mottainai/proto";
import { client } from "../api.js";
import { errorText, resultName, statusName, when } from "../format.js";
import { LogView } from "../log-view.js";

/** One task: its state, spec, stop/restart, and its live log. */
export function TaskPage({ id }: { id: string }) {
  const [task, setTask] = useState<Task>();
  const [error, setError] = useState("");
  const [tick, setTick] = useState(0);
  const tasks = client(TaskService);

  useEffect(() => {
    tasks.getTask({ id }).then(
      (r) => (setTask(r.task), setError("")),
      (e) => setError(errorText(e)),
    );
  }, [id, tick]);

  useEffect(() => {
    const abort = new AbortController();
    void (async () => {
      try {
        for await (const { event } of client(EventService).subscribe(
          { types: ["task."], fromSequence: 0n },
          { signal: abort.signal },
        )) {
          if (event?.subjectId === id) setTick((t) => t + 1);
        }
      } catch {
        // closed or not signed in
      }
    })();
    return () => abort.abort();
  }, [id]);

  const act = (f: () => Promise<unknown>) =>
    f().then(
      () => setTick((t) => t + 1),
      (e) => setError(errorText(e)),
    );
  return (
    <main>
      <h1>
        Task <code>{id}</code>
      </h1>
      {error && <p class="error">{error}</p>}
      {task && (
        <>
          <dl class="facts">
            <dt>name</dt>
            <dd>{task.spec?.name}</dd>
            <dt>status</dt>
            <dd data-testid="task-status" class={`status ${statusName(task.status)}`}>
              {statusName(task.status)}
            </dd>
            <dt>result</dt>
            <dd data-testid="task-result">{resultName(task.result)}</dd>
            <dt>attempt</dt>
            <dd>{task.attempt}</dd>
            <dt>node</dt>
            <dd>{task.nodeId}</dd>
            <dt>created</dt>
            <dd>{when(task.createTime)}</dd>
            <dt>started</dt>
            <dd>{when(task.startTime)}</dd>
            <dt>ended</dt>
            <dd>{when(task.endTime)}</dd>
            {task.waitingReason && (
              <>
                <dt>waiting</dt>
                <dd>{task.waitingReason}</dd>
              </>
            )}
            {task.error && (
              <>
                <dt>error</dt>
                <dd>{task.error}</dd>
              </>
            )}
          </dl>
          <div class="toolbar">
            <button onClick={() => act(() => tasks.stopTask({ id }))}>stop</button>
            <button onClick={() => act(() => tasks.restartTask({ id }))}>restart</button>
          </div>
          <details>
            <summary>spec</summary>
            <pre>{JSON.stringify(task.spec, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2)}</pre>
          </details>
          <LogView taskId={id} key={`${id}#${task.attempt}`} />
        </>
      )}
    </main>
  );
}
