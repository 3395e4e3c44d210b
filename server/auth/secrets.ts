// Bearer secrets (admin tokens, join tokens): `<prefix>_<id>_<secret>`. The id is public and used
// to find the row; only a SHA-256 of the secret is stored, compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type TokenPrefix = 'hma' | 'hmj';

export interface MintedToken {
  id: string;
  token: string;
  hash: Buffer;
}

export function mintToken(prefix: TokenPrefix): MintedToken {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `${prefix}_${id}_${secret}`, hash: hashSecret(secret) };
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

const SHAPE = /^(hma|hmj)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** Split a presented token; null if it is not of our shape (so nothing is looked up for junk). */
export function parseToken(prefix: TokenPrefix, token: string): { id: string; secret: string } | null {
  const m = SHAPE.exec(token);
  if (!m || m[1] !== prefix) return null;
  return { id: m[2]!, secret: m[3]! };
}

/** Constant-time comparison of a presented secret against a stored hash. */
export function secretMatches(secret: string, storedHash: Buffer): boolean {
  const presented = hashSecret(secret);
  return presented.length === storedHash.length && timingSafeEqual(presented, storedHash);
}
