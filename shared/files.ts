// File primitives for the server's data dir and the agent's state dir. Every write goes through a
// temp file and a rename so a crash leaves the old content or the new, never half a key.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export const KEY_MODE = 0o600;
export const FILE_MODE = 0o644;
export const CERT_MODE = FILE_MODE;
export const DIR_MODE = 0o700;

/**
 * With `noClobber` the final step is link() instead of rename(), which fails with EEXIST rather
 * than replacing a file another process wrote meanwhile (used for the CA key).
 */
export async function writeFileAtomic(file: string, data: string, mode: number, opts: { noClobber?: boolean } = {}): Promise<void> {
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
    if (opts.noClobber) await linkNoClobber(tmp, file);
    else await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

async function linkNoClobber(tmp: string, file: string): Promise<void> {
  try {
    await fs.link(tmp, file);
    await fs.unlink(tmp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Some filesystems (FAT, certain network mounts) have no hard links; there a check-then-rename
    // is the best we can do, and the window it leaves only matters if two servers race on one dir.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw err;
    if (await exists(file)) throw Object.assign(new Error(`${file} already exists`), { code: 'EEXIST' });
    await fs.rename(tmp, file);
  }
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

/** Tighten a private key file that someone loosened (e.g. a restore from backup with 0644). */
export async function tightenKeyMode(file: string): Promise<void> {
  const st = await fs.stat(file);
  if ((st.mode & 0o777 & ~KEY_MODE) !== 0) await fs.chmod(file, KEY_MODE);
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
