// The version printed by `hostmesh --version`: package.json's, read at run time so that it is
// never a second copy to keep in step. dist/cli/version.js → ../../package.json.
import { readFileSync } from 'node:fs';

export function cliVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
