const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration such as "250ms", "10s", "1m30s", "2h" or "30d" into milliseconds. A bare number is
 * milliseconds. Returns undefined for anything else, so callers can name the offending field.
 */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const parts = trimmed.match(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g);
  if (!parts || parts.join("") !== trimmed) return undefined;
  let total = 0;
  for (const part of parts) {
    const [, value, unit] = part.match(/^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/) ?? [];
    total += Number(value) * (UNITS[unit ?? ""] ?? NaN);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}
