// An agent as released before a change, built from this repository's history: the commit's tree is
// exported with `git archive` (the repository itself is left alone), given this checkout's
// node_modules when the commit has the same lockfile (else its own `npm ci`), and its product code
// (not its tests or scripts) compiled with tsc. For tests of mixed versions during a rolling upgrade.
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
    return { unavailable: `commit ${commit} is not in this clone's history (a shallow clone?): mixed versions NOT tested` };
  }
  const dir = tempDir(`hostmesh-old-${commit.slice(0, 7)}-`);
  const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true });
  const run = (cmd: string, args: string[]): void => {
    try {
      execFileSync(cmd, args, { cwd: dir, stdio: 'pipe', maxBuffer: 64 << 20 });
    } catch (e) {
      const x = e as { stdout?: Buffer; stderr?: Buffer; message: string };
      throw new Error(`building ${commit.slice(0, 7)}: ${cmd} ${args.join(' ')} failed: ${x.message}\n${x.stdout?.toString() ?? ''}${x.stderr?.toString() ?? ''}`.slice(0, 4000));
    }
  };
  try {
    const tar = execFileSync('git', ['archive', '--format=tar', commit], { cwd: REPO_ROOT, maxBuffer: 256 << 20 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    if (fs.readFileSync(path.join(dir, 'package-lock.json'), 'utf8') === fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) {
      fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    } else {
      run('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline']);
    }
    fs.writeFileSync(path.join(dir, 'tsconfig.old.json'), JSON.stringify({ extends: './tsconfig.json', include: ['server/**/*.ts', 'agent/**/*.ts', 'shared/**/*.ts', 'cli/**/*.ts'] }));
    run(process.execPath, [path.join(dir, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.old.json']);
  } catch (e) {
    cleanup();
    throw e;
  }
  return { cli: path.join(dir, 'dist/cli/main.js'), cleanup };
}
