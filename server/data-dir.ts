// The server's data dir: created owner-only, checked writable up front so a bad dir is one clear
// error at start rather than a failure on the first write.
import fs from 'node:fs';
import { HmError } from '../shared/errors.js';

export const DATA_FILES = {
  database: 'hostmesh.db',
  caDir: 'ca',
  tlsDir: 'tls',
  adminToken: 'admin.token',
  serverInfo: 'server.json',
} as const;

export function prepareDataDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.statSync(dir);
    if (!st.isDirectory()) throw new Error('not a directory');
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
    if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) fs.chmodSync(dir, 0o700);
  } catch (e) {
    throw new HmError('HM_ERR_STARTUP', `data dir ${dir} is not usable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; give a writable directory with --data-dir`, { cause: e });
  }
}
