import { useEffect, useRef, useState } from "preact/hooks";
import { TaskService } from "@mottainai/proto";
import { client } from "./api.js";
import { ansiSpans } from "./ansi.js";

const LINE_PX = 18;
const OVERSCAN = 20;

/** Saves the log's exact bytes (read again through FollowTaskLog, without following) as a file. */
async function downloadRaw(taskId: string): Promise<void> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for await (const res of client(TaskService).followTaskLog({ id: taskId, offset: 0n, follow: false })) {
    parts.push(new Uint8Array(res.data));
  }
  const url = URL.createObjectURL(new Blob(parts, { type: "text/plain" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `${taskId}.log`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * A task's log, following FollowTaskLog from offset 0. Lines are kept as strings and only the
 * visible window is rendered (fixed line height), so a log of a million lines costs its text
 * and a few dozen DOM nodes. "Follow" keeps the view at the end while new lines arrive.
 */
export function LogView({ taskId }: { taskId: string }) {
  const lines = useRef<string[]>([""]);
  const [count, setCount] = useState(0);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(400);
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const abort = new AbortController();
    const decoder = new TextDecoder();
    lines.current = [""];
    void (async () => {
      try {
        for await (const res of client(TaskService).followTaskLog(
          { id: taskId, offset: 0n, follow: true },
          { signal: abort.signal },
        )) {
          const text = decoder.decode(res.data, { stream: true });
          const parts = text.split("\n");
          const all = lines.current;
          all[all.length - 1] += parts[0]!;
          for (let i = 1; i < parts.length; i++) all.push(parts[i]!);
          setCount(all.length);
        }
      } catch {
        // aborted or the task vanished: keep what was shown
      }
    })();
    return () => abort.abort();
  }, [taskId]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    setHeight(el.clientHeight);
    if (follow) el.scrollTop = el.scrollHeight;
  }, [count, follow]);

  const total = lines.current.length;
  const first = Math.max(0, Math.floor(top / LINE_PX) - OVERSCAN);
  const last = Math.min(total, Math.ceil((top + height) / LINE_PX) + OVERSCAN);
  const visible = lines.current.slice(first, last);
  return (
    <section aria-label="log">
      <div class="toolbar">
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} /> follow
        </label>
        <button
          onClick={() => {
            const el = box.current;
            if (el) el.scrollTop = el.scrollHeight;
          }}
        >
          jump to end
        </button>
        <button onClick={() => void downloadRaw(taskId)}>download raw</button>
        <span data-testid="log-lines">{total} lines</span>
      </div>
      <div
        class="log"
        ref={box}
        tabIndex={0}
        data-testid="log"
        onScroll={(e) => {
          const el = e.currentTarget as HTMLDivElement;
          setTop(el.scrollTop);
          if (follow && el.scrollTop + el.clientHeight < el.scrollHeight - LINE_PX * 2) setFollow(false);
        }}
      >
        <div style={{ height: `${total * LINE_PX}px`, position: "relative" }}>
          <pre style={{ position: "absolute", top: `${first * LINE_PX}px`, margin: 0, lineHeight: `${LINE_PX}px` }}>
            {visible.map((line, i) => (
              <div key={first + i} class="line">
                {ansiSpans(line).map((s) => (
                  <span style={{ color: s.fg || undefined, fontWeight: s.bold ? "bold" : undefined }}>{s.text}</span>
                ))}
                {line === "" ? "\u00a0" : null}
              </div>
            ))}
          </pre>
        </div>
      </div>
    </section>
  );
}
