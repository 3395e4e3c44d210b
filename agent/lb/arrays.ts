// Array helpers shared by the lb units.

/** Same length and the same elements (by identity) in the same order. */
export function sameElements<E>(a: readonly E[], b: readonly E[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
