// The first Route rule that matches a request: path (exact or prefix, on the normalized path),
// method, and header values (names lower-case on both sides).
import { getHeader } from '../../http/head-writer.js';
import type { CompiledRule } from '../upstream.js';

export function matchRule(rules: readonly CompiledRule[], method: string, path: string, headers: readonly string[]): CompiledRule | null {
  for (const r of rules) {
    if (r.path !== null && path !== r.path) continue;
    if (r.pathPrefix !== null && !path.startsWith(r.pathPrefix)) continue;
    if (r.methods !== null && !r.methods.has(method)) continue;
    let ok = true;
    for (const [name, value] of r.headers) {
      if (getHeader(headers, name) !== value) {
        ok = false;
        break;
      }
    }
    if (ok) return r;
  }
  return null;
}
