import { createHash } from 'node:crypto';
import { HmError } from '../../shared/errors.js';

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** DER bodies of every PEM block with `label`, in file order. Other blocks are skipped. */
export function pemBlocks(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    if (m[1] !== label) continue;
    const body = (m[2] ?? '').replace(/\s+/g, '');
    // Buffer.from(base64) silently skips junk, so check the alphabet ourselves to reject corrupt files.
    if (body.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) continue;
    out.push(Buffer.from(body, 'base64'));
  }
  return out;
}

export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Normalises concatenation so a chain never has two blocks on one line. */
export function joinPem(...parts: string[]): string {
  return parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}

export function fingerprintOfDer(der: Uint8Array): string {
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/** `sha256:<hex>` of the first certificate in `certPem` — the form install commands pin. */
export function fingerprintOfPem(certPem: string): string {
  const der = pemBlocks(certPem, 'CERTIFICATE')[0];
  if (!der) throw new HmError('HM_ERR_VALIDATION', 'no PEM certificate found');
  return fingerprintOfDer(der);
}
