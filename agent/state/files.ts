// File primitives for the state dir. Every write goes through a temp file and a rename so a crash
// leaves the old content or the new, never half a key or half a snapshot.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export const KEY_MODE = 0o600;
export const FILE_MODE = 0o644;
export const DIR_MODE = 0o700;

export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    // 'wx' and the mode at open: a key is never readable by others, not even for a moment.
    const fh = await fs.open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.chmod(tmp, mode); // open() filters the mode through the umask; set exactly what we mean
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename itself durable; not every filesystem allows fsync on a directory.
  try {
    const dh = await fs.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* best effort */
  }
}

/** Contents, or null when the file does not exist; other errors propagate. */
export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Create `dir` owner-only, or tighten one we own that someone loosened. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
  const st = await fs.stat(dir);
  if (!st.isDirectory()) throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
  if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) await fs.chmod(dir, DIR_MODE);
}
