// The one global revision. Every registry write that changes what agents see bumps it, inside the
// same transaction as the write, so a revision always names one consistent state.
import type { Db } from './db.js';

export function currentRevision(db: Db): number {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'revision'").get() as { value: string };
  return Number(row.value);
}

/** Must be called inside a transaction. */
export function bumpRevision(db: Db): number {
  const next = currentRevision(db) + 1;
  db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'").run(String(next));
  return next;
}

export function nowIso(): string {
  return new Date().toISOString();
}
