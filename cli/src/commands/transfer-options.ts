import { existsSync } from "node:fs";
import { Option, UsageError } from "clipanion";

/** The optional `DIR` positional of the download commands (the original's `<target>`). */
export function directoryArgument(): string | undefined {
  return Option.String({ name: "DIR", required: false });
}

/** The `--to DIR` option of the download commands; undefined when not given. */
export function toOption(): string | undefined {
  return Option.String("--to", { description: "Local directory, same as DIR (default the current one)" });
}

/** The repeatable `-f,--filter REGEX` option of the download commands (the original's filters). */
export function filterOption(): string[] {
  return Option.Array("-f,--filter", [], {
    description: "Only paths matching this regular expression (repeatable: any may match)",
  });
}

/** The directory a download writes into: DIR or --to (not both, unless equal), "." by default. */
export function downloadDirectory(dir: string | undefined, to: string | undefined): string {
  if (dir !== undefined && to !== undefined && dir !== to) {
    throw new UsageError(`give the directory once: DIR ${JSON.stringify(dir)} or --to ${JSON.stringify(to)}`);
  }
  return dir ?? to ?? ".";
}

/** The sentence the download commands' help adds about DIR and -f. */
export const downloadFilterDetails =
  "The directory is DIR (the original's `<target>`) or `--to`. `-f REGEX` (repeatable) keeps only the paths that one of them matches anywhere (the original's filters; a path is also tried with a leading `/`, as the original listed it).";

/**
 * The sources and remote prefix of an upload, understanding the original's
 * `upload ID FILE STORAGE-PATH`: with exactly two PATHs and no `--to`, a second PATH that is `/`
 * or does not exist locally is the remote directory (its leading `/` dropped: paths here are
 * relative), not a second source. Anything else is returned unchanged.
 */
export function uploadTargets(sources: readonly string[], to: string): { sources: string[]; to: string } {
  const [file, second] = sources;
  if (sources.length === 2 && to === "" && file !== undefined && second !== undefined) {
    if (second === "/" || !existsSync(second)) return { sources: [file], to: relativeRemotePath(second) };
  }
  return { sources: [...sources], to };
}

/** A remote path as the original wrote it (`/pkgs/a.tbz2`, `/`) made relative (`pkgs/a.tbz2`, ""). */
export function relativeRemotePath(path: string): string {
  return path.replace(/^\/+/, "");
}

/** The sentence the upload commands' help adds about the original's form. */
export const uploadOriginalDetails =
  "The original's form `upload NAME FILE PATH` works too: with exactly two PATHs and no `--to`, a second one that is `/` or does not exist locally is the remote directory.";
