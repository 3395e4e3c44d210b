import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export const KEY_MODE = 0o600;
export const CERT_MODE = 0o644;

/**
 * Write via a temp file in the same directory then rename, so a crash leaves either the old file
 * or the new one, never half a key. With `noClobber` the final step is link() instead of rename(),
 * which fails with EEXIST rather than replacing a file another process wrote meanwhile.
 */
export async function writeFileAtomic(
  file: string,
  data: string,
  mode: number,
  opts: { noClobber?: boolean } = {},
): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await fs.open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // open() filters the mode through the umask; set exactly what we mean (0644 certs under umask 077).
    await fs.chmod(tmp, mode);
    if (opts.noClobber) {
      await linkNoClobber(tmp, file);
    } else {
      await fs.rename(tmp, file);
    }
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
  // Makes the rename itself durable. Not every platform/filesystem allows fsync on a directory.
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

/** Tighten a private key file that someone loosened (e.g. a restore from backup with 0644). */
export async function tightenKeyMode(file: string): Promise<void> {
  const st = await fs.stat(file);
  if ((st.mode & 0o777 & ~KEY_MODE) !== 0) await fs.chmod(file, KEY_MODE);
}

/** File contents, or null if it does not exist; other errors propagate. */
export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
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
