import { useEffect, useState } from "preact/hooks";
import { UserService } from "@mottainai/proto";
import { client, session } from "./api.js";
import { errorText } from "./format.js";
import { EventsPage } from "./pages/events.js";
import { NamespacePage, NamespacesPage } from "./pages/namespaces.js";
import { NodesPage } from "./pages/nodes.js";
import { TaskPage } from "./pages/task.js";
import { TasksPage } from "./pages/tasks.js";

const usePath = (): [string, (to: string) => void] => {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    const onClick = (e: MouseEvent) => {
      const a = (e.target as Element).closest?.("a");
      if (!a || a.origin !== location.origin || e.ctrlKey || e.metaKey || a.hasAttribute("download")) return;
      e.preventDefault();
      history.pushState(null, "", a.pathname);
      setPath(a.pathname);
    };
    addEventListener("popstate", onPop);
    document.addEventListener("click", onClick);
    return () => (removeEventListener("popstate", onPop), document.removeEventListener("click", onClick));
  }, []);
  return [path, (to) => (history.pushState(null, "", to), setPath(to))];
};

/** Sign-in with an API token (kept in sessionStorage) or sign-out, and who is signed in. */
function Account({ onChange }: { onChange: () => void }) {
  const [who, setWho] = useState("");
  const [error, setError] = useState("");
  const [token, setToken] = useState("");
  useEffect(() => {
    if (!session.token()) return setWho("");
    client(UserService)
      .getCurrentUser({})
      .then(
        (r) => (setWho(r.user?.name ?? "?"), setError("")),
        (e) => setError(errorText(e)),
      );
  }, [session.token()]);
  if (session.token()) {
    return (
      <div class="account">
        <span data-testid="who">{who}</span>
        {error && <span class="error">{error}</span>}
        <button onClick={() => (session.signOut(), setWho(""), onChange())}>sign out</button>
      </div>
    );
  }
  return (
    <form class="account" onSubmit={(e) => (e.preventDefault(), session.signIn(token), setToken(""), onChange())}>
      <label>
        API token{" "}
        <input type="password" name="token" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit">sign in</button>
    </form>
  );
}

/** The dashboard: navigation, account, and the page for the current path. */
export function App() {
  const [path] = usePath();
  const [generation, setGeneration] = useState(0);
  const task = path.match(/^\/tasks\/([0-9a-f]+)$/);
  let page;
  const namespace = path.match(/^\/ns\/(.+)$/);
  if (task) page = <TaskPage id={task[1]!} />;
  else if (namespace) page = <NamespacePage name={decodeURIComponent(namespace[1]!)} />;
  else if (path === "/ns") page = <NamespacesPage />;
  else if (path === "/events") page = <EventsPage />;
  else if (path === "/nodes") page = <NodesPage />;
  else page = <TasksPage />;
  return (
    <div key={generation}>
      <header>
        <strong>Mottainai</strong>
        <nav>
          <a href="/tasks">tasks</a>
          <a href="/nodes">nodes</a>
          <a href="/ns">namespaces</a>
          <a href="/events">events</a>
        </nav>
        <Account onChange={() => setGeneration((g) => g + 1)} />
      </header>
      {page}
    </div>
  );
}
