import { UsageError } from "clipanion";

/**
 * The regular expressions of repeated `-f REGEX` options (the original's download filters);
 * an invalid one is a usage error naming it. An empty list means "no filter".
 */
export function parsePathFilters(values: readonly string[]): RegExp[] {
  return values.map((value) => {
    try {
      return new RegExp(value);
    } catch (error) {
      throw new UsageError(`invalid -f "${value}": ${(error as Error).message}`);
    }
  });
}

/**
 * Whether `path` passes `filters`: always with no filter, otherwise when any filter matches
 * somewhere in it (unanchored, like Go's MatchString). The original listed paths with a leading
 * `/` (`/pkgs/a.tbz2`), so a filter also matches against `/` + path: `^/pkgs/` keeps working.
 */
export function matchesPathFilters(path: string, filters: readonly RegExp[]): boolean {
  return filters.length === 0 || filters.some((f) => f.test(path) || f.test(`/${path}`));
}
