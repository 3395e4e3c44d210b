// Human times for tables: ages like kubectl's ("45s", "12m", "3h", "5d") rather than timestamps,
// because "how long ago" is the question an operator reading a table is asking.

export function shortDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** Time since `iso`, or `-` when there is none. */
export function age(iso: string | null | undefined, now: number = Date.now()): string {
  const t = parseTime(iso);
  return t === null ? '-' : shortDuration(now - t);
}

export function ago(iso: string | null | undefined, now: number = Date.now()): string {
  const t = parseTime(iso);
  return t === null ? '-' : `${shortDuration(now - t)} ago`;
}

/** `in 20h`, or `expired 2h ago` once past. */
export function until(iso: string | null | undefined, now: number = Date.now()): string {
  const t = parseTime(iso);
  if (t === null) return '-';
  return t >= now ? `in ${shortDuration(t - now)}` : `expired ${shortDuration(now - t)} ago`;
}

function parseTime(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}
