/** A file path or name that cannot be stored; the message names the field and says why. */
export class FilePathError extends Error {
  override name = "FilePathError";
}

/** Longest accepted file path, in UTF-8 bytes. */
export const MAX_FILE_PATH_BYTES = 4096;

/**
 * Checks a path of a file inside an artefact set, a namespace revision or a storage and returns
 * it normalised ("a//b/./c" → "a/b/c"). Refused, with a FilePathError naming `field`: empty
 * paths, absolute paths, backslashes, NUL and other control characters, ".." segments, and
 * paths longer than MAX_FILE_PATH_BYTES. The same rules hold on the server, the agent and the
 * CLI, so a name accepted by one is accepted by all.
 */
export function normalizeFilePath(path: string, field: string): string {
  const fail = (why: string): never => {
    throw new FilePathError(`${field}: ${why}, got ${JSON.stringify(path)}`);
  };
  if (path === "") fail("a path is required");
  if (Buffer.byteLength(path) > MAX_FILE_PATH_BYTES) fail(`a path is at most ${MAX_FILE_PATH_BYTES} bytes`);
  if (path.includes("\0")) fail("a path must not contain NUL");
  // eslint-disable-next-line no-control-regex
  if (/[\u0001-\u001f\u007f]/.test(path)) fail("a path must not contain control characters");
  if (path.includes("\\")) fail('a path uses "/" as its separator, not "\\"');
  if (path.startsWith("/")) fail("a path must be relative, not absolute");
  const segments = path.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) fail('a path must not contain ".."');
  if (segments.length === 0) fail("a path must name a file");
  return segments.join("/");
}

/** Names of namespaces, storages and organizations: letters, digits, ".", "_", "-"; 1–128 long, not starting with "." or "-". */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Checks a namespace, storage or organization name; throws FilePathError naming `field`. */
export function validateResourceName(name: string, field: string): string {
  if (!NAME.test(name)) {
    throw new FilePathError(
      `${field}: expected 1 to 128 letters, digits, ".", "_" or "-", not starting with "." or "-", got ${JSON.stringify(name)}`,
    );
  }
  return name;
}
