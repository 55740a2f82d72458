import type { NamespaceStore } from "../store/namespace-store.js";
import { PermanentDeliveryError, type RevisionFile } from "./deliverer.js";

/**
 * DeliveryWorkerOptions.revisionFiles over the namespace store: the files of an existing
 * revision. A revision (or namespace) that does not exist is a PermanentDeliveryError, never an
 * empty file list (which rsync --delete would turn into an emptied target); so is a file list
 * whose length differs from the revision's file count.
 */
export function namespaceRevisionFiles(
  namespaces: Pick<NamespaceStore, "getRevision" | "listFiles">,
): (namespace: string, revision: number) => Promise<readonly RevisionFile[]> {
  return async (namespace, revision) => {
    const record = await namespaces.getRevision(namespace, revision);
    if (!record) throw new PermanentDeliveryError(`namespace ${namespace} has no revision ${revision}`);
    const files = await namespaces.listFiles(namespace, revision);
    if (files.length !== record.fileCount) {
      throw new Error(
        `namespace ${namespace} revision ${revision}: listed ${files.length} files, the revision has ${record.fileCount}`,
      );
    }
    return files;
  };
}
