// `npm run build:agent`: the agent as one CommonJS file (for hosts with Node.js 20+) and as a Node
// single executable application (for hosts without), each with a sha256sum-style checksum file,
// into dist-agent/ (or --out DIR). The server serves these to the installer (GET /install/...).
//
// The bundle's entry is cli/agent-main.ts, not the full CLI: the full CLI reaches the server and
// so better-sqlite3, a native addon that can be neither bundled nor embedded. The executable is
// this machine's own `node` with the bundle injected (postject), so it runs on hosts of this
// machine's OS and architecture; its name says which (hostmesh-agent-linux-x64).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { VERSION } from '../shared/version.js';

const run = promisify(execFile);
const REPO = path.resolve(new URL('.', import.meta.url).pathname, '../..');
// Node's fixed sentinel: the executable looks for this fuse to know a blob was injected.
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export const BUNDLE_NAME = 'hostmesh-agent.cjs';
export const seaName = (platform: string = process.platform, arch: string = process.arch): string => `hostmesh-agent-${platform}-${arch}`;

export interface BuildResult {
  outDir: string;
  files: Array<{ name: string; sha256: string; bytes: number }>;
  ms: { bundle: number; sea: number };
}

export async function buildAgent(opts: { outDir: string; sea?: boolean; log?: (line: string) => void }): Promise<BuildResult> {
  const log = opts.log ?? (() => undefined);
  const outDir = path.resolve(opts.outDir);
  await fs.mkdir(outDir, { recursive: true });
  const files: BuildResult['files'] = [];

  let t = Date.now();
  const bundle = path.join(outDir, BUNDLE_NAME);
  const result = await build({
    entryPoints: [path.join(REPO, 'cli/agent-main.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    // Node 20's single executables run a CommonJS main script only. The entry's #! line is kept.
    format: 'cjs',
    // Without keepNames: its __name() call on every function and class cost ~0.9 MB of idle RSS.
    // Error classes set their name themselves, so logged error types stay readable.
    minify: true,
    legalComments: 'none',
    // ws's optional native speed-ups: never looked for (a single executable warns on any require()
    // of a non-builtin module), and left out of the bundle.
    external: ['bufferutil', 'utf-8-validate'],
    define: {
      'process.env.WS_NO_BUFFER_UTIL': '"1"',
      'process.env.WS_NO_UTF_8_VALIDATE': '"1"',
      // shared/log.ts: no pino-pretty worker in a bundle.
      'process.env.HOSTMESH_BUNDLE': '"1"',
    },
    logLevel: 'silent',
  });
  for (const w of result.warnings) log(`esbuild: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}`);
  await fs.chmod(bundle, 0o755);
  files.push(await checksum(bundle));
  const bundleMs = Date.now() - t;
  log(`${BUNDLE_NAME}: ${files[0]!.bytes} bytes in ${bundleMs} ms`);

  t = Date.now();
  if (opts.sea !== false) {
    if (process.platform !== 'linux') {
      log(`no single executable: the installer supports Linux hosts only and this is ${process.platform}`);
    } else {
      files.push(await buildSea(outDir, bundle));
      log(`${seaName()}: ${files[1]!.bytes} bytes in ${Date.now() - t} ms`);
    }
  }
  const seaMs = Date.now() - t;
  await fs.writeFile(
    path.join(outDir, 'manifest.json'),
    JSON.stringify({ version: VERSION, node: process.version, builtAt: new Date().toISOString(), files }, null, 2) + '\n',
  );
  return { outDir, files, ms: { bundle: bundleMs, sea: seaMs } };
}

async function buildSea(outDir: string, bundle: string): Promise<{ name: string; sha256: string; bytes: number }> {
  const work = await fs.mkdtemp(path.join(outDir, '.sea-'));
  try {
    const blob = path.join(work, 'sea.blob');
    const config = path.join(work, 'sea-config.json');
    await fs.writeFile(config, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true }));
    await run(process.execPath, ['--experimental-sea-config', config]);
    // Written under a temporary name and renamed at the end, so a failed build never leaves a
    // half-injected binary (with a stale .sha256 beside it) where the server would serve it.
    const tmp = path.join(work, seaName());
    await fs.copyFile(process.execPath, tmp);
    await fs.chmod(tmp, 0o755);
    const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
    await run(process.execPath, [postject, tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { maxBuffer: 16 * 1024 * 1024 });
    const dest = path.join(outDir, seaName());
    await fs.rename(tmp, dest);
    return await checksum(dest);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Writes `<file>.sha256` in sha256sum's format, which `sha256sum -c` and the installer read. */
async function checksum(file: string): Promise<{ name: string; sha256: string; bytes: number }> {
  const data = await fs.readFile(file);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const name = path.basename(file);
  await fs.writeFile(`${file}.sha256`, `${sha256}  ${name}\n`);
  return { name, sha256, bytes: data.length };
}

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  const args = process.argv.slice(2);
  const outAt = args.indexOf('--out');
  const outDir = outAt >= 0 && args[outAt + 1] ? args[outAt + 1]! : path.join(REPO, 'dist-agent');
  const started = Date.now();
  buildAgent({ outDir, sea: !args.includes('--no-sea'), log: (l) => process.stdout.write(`${l}\n`) }).then(
    (r) => process.stdout.write(`agent build in ${r.outDir} (${Date.now() - started} ms)\n`),
    (e: Error) => {
      process.stderr.write(`build:agent failed: ${e.message}\n`);
      process.exitCode = 1;
    },
  );
}
