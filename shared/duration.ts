// Durations as operators write them in YAML: "250ms", "5s", "1m30s", "24h", "7d".
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The pattern resource schemas use, so a bad duration is refused at the edge with its field name. */
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h|d))+$';
const PART = /([0-9]+)(ms|s|m|h|d)/g;
const WHOLE = new RegExp(DURATION_PATTERN);

/** Milliseconds for a duration string; throws RangeError on anything else. */
export function parseDuration(text: string): number {
  if (!WHOLE.test(text)) throw new RangeError(`not a duration: "${text}" (use e.g. 500ms, 5s, 1h, 7d)`);
  let total = 0;
  for (const m of text.matchAll(PART)) total += Number(m[1]) * (UNIT_MS[m[2]!] ?? 0);
  return total;
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0 && ms > 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
