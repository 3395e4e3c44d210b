// An agent as released before a change, built from this repository's history: the commit's tree is
// exported with `git archive` (the repository itself is left alone), given this checkout's
// node_modules (the commit must have the same dependencies) and compiled with tsc. For tests of
// mixed versions during a rolling upgrade.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, tempDir } from './server.js';

export interface OldAgent {
  /** The built `hostmesh` entry script, for AgentSpec.cli. */
  cli: string;
  cleanup(): void;
}

/** `unavailable` says why when the history does not hold the commit (a shallow clone). */
export function buildOldAgent(commit: string): OldAgent | { unavailable: string } {
  try {
    execFileSync('git', ['cat-file', '-e', `${commit}^{commit}`], { cwd: REPO_ROOT, stdio: 'ignore' });
  } catch {
    return { unavailable: `commit ${commit} is not in this clone's history (shallow clone?)` };
  }
  const lock = (rev: string): string => execFileSync('git', ['show', `${rev}:package-lock.json`], { cwd: REPO_ROOT, maxBuffer: 64 << 20 }).toString();
  if (lock(commit) !== fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) {
    throw new Error(`commit ${commit} has other dependencies than this checkout: its build would need its own npm ci`);
  }
  const dir = tempDir(`hostmesh-old-${commit.slice(0, 7)}-`);
  const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const tar = execFileSync('git', ['archive', '--format=tar', commit], { cwd: REPO_ROOT, maxBuffer: 256 << 20 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir, stdio: 'pipe' });
  } catch (e) {
    cleanup();
    throw e;
  }
  return { cli: path.join(dir, 'dist/cli/main.js'), cleanup };
}
