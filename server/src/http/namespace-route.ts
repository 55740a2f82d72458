import { Code, ConnectError } from "@connectrpc/connect";
import { checkedPath } from "../auth/file-access.js";
import { readableNamespace } from "../auth/namespace-access.js";
import type { NamespacePublisher } from "../namespaces/namespace-publisher.js";
import type { Store } from "../store/store.js";
import type { FileRoute } from "./file-routes.js";

/**
 * `GET /namespaces/<name>/<path>` (the `latest` tag) and `GET /namespaces/<name>/@<ref>/<path>`
 * (a tag or a revision number): a namespace file, so that a namespace serves a package
 * repository to apt, curl or wget. Anonymous callers reach public namespaces; everyone else
 * sends a bearer token. A namespace, ref or path that is missing or not the caller's to read is
 * a 404 (readableNamespace): nothing about private namespaces is revealed.
 */
export function namespaceRoute(store: Store, publisher: NamespacePublisher): FileRoute {
  return {
    prefix: "namespaces",
    anonymous: true,
    async resolve(principal, [name = "", ...rest]) {
      const ns = await readableNamespace(store, principal, name);
      let ref = "";
      if (rest[0]?.startsWith("@")) ref = rest.shift()!.slice(1);
      let revision: number;
      try {
        revision = await publisher.resolveRef(ns, ref);
      } catch {
        throw new ConnectError("no such ref", Code.NotFound);
      }
      const [file] = await store.namespaces.getFiles(ns.name, revision, [checkedPath(rest.join("/"), "path")]);
      if (!file) throw new ConnectError("no such file", Code.NotFound);
      return file;
    },
  };
}
