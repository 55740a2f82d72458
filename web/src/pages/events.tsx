import { useEffect, useState } from "preact/hooks";
import { EventService, type Event } from "@mottainai/proto";
import { client } from "../api.js";
import { errorText, when } from "../format.js";

const KEEP = 200;

/** The newest events, live from EventService.Subscribe, filtered by a type prefix. */
export function EventsPage() {
  const [prefix, setPrefix] = useState("");
  const [events, setEvents] = useState<Event[]>([]);
  const [error, setError] = useState("");
  useEffect(() => {
    const abort = new AbortController();
    setEvents([]);
    void (async () => {
      try {
        const types = prefix ? [prefix] : [];
        for await (const { event } of client(EventService).subscribe({ types, fromSequence: 0n }, { signal: abort.signal })) {
          if (event) setEvents((list) => [event, ...list].slice(0, KEEP));
        }
      } catch (e) {
        if (!abort.signal.aborted) setError(errorText(e));
      }
    })();
    return () => abort.abort();
  }, [prefix]);
  return (
    <main>
      <h1>Events</h1>
      <label>
        type prefix <input value={prefix} onChange={(e) => setPrefix((e.target as HTMLInputElement).value)} />
      </label>
      {error && <p class="error">{error}</p>}
      <table>
        <thead>
          <tr>
            <th>seq</th>
            <th>time</th>
            <th>type</th>
            <th>subject</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr data-event={e.type}>
              <td>{String(e.sequence)}</td>
              <td>{when(e.time)}</td>
              <td>{e.type}</td>
              <td>{e.subjectId}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}
