// The mesh roots this agent trusts. Learned at join (the pinned root), replaced by the bundle each
// snapshot carries, so a root rotation on the server reaches every TLS context that reads it here.
import type { X509Certificate } from 'node:crypto';
import { certBlocks, issuedByAny, parseCert } from './pem.js';

export class TrustBundle {
  #pems: string[] = [];
  #roots: X509Certificate[] = [];

  constructor(pems: readonly string[] = []) {
    this.replace(pems);
  }

  get pems(): readonly string[] {
    return this.#pems;
  }

  /** Returns whether anything changed. Throws if a PEM is not a certificate (nothing is replaced then). */
  replace(pems: readonly string[]): boolean {
    const next = [...new Set(pems.flatMap(certBlocks))];
    const roots = next.map((p) => parseCert(p).x509);
    if (next.length === this.#pems.length && next.every((p, i) => p === this.#pems[i])) return false;
    this.#pems = next;
    this.#roots = roots;
    return true;
  }

  issued(leaf: X509Certificate): boolean {
    return issuedByAny(leaf, this.#roots);
  }
}
