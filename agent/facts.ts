// Host facts for the server's inventory (`hostmesh get hosts`), sent in hello. node:os answers at
// once; the distro and its release come from os-release(5), read directly. (systeminformation did
// this before: loading it and the commands it spawns held ~12 MB of an idle agent's ~72 MB RSS,
// for the same values.) The read has a time budget so a sick disk cannot hold the hello back.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { VERSION } from '../shared/version.js';

export const FACTS_BUDGET_MS = 2_000;

export type Facts = Record<string, string | number>;

/** os-release(5): /etc first, /usr/lib as the fallback. */
const OS_RELEASE_FILES = ['/etc/os-release', '/usr/lib/os-release'];

export async function collectFacts(budgetMs = FACTS_BUDGET_MS, files: readonly string[] = OS_RELEASE_FILES): Promise<Facts> {
  const facts: Facts = {
    os: os.platform(),
    distro: os.type(),
    release: os.release(),
    kernel: os.release(),
    arch: os.arch(),
    cpus: os.cpus().length || os.availableParallelism(),
    memoryBytes: os.totalmem(),
    hostname: os.hostname(),
    agentVersion: VERSION,
    nodeVersion: process.version,
  };
  if (os.platform() !== 'linux') return facts;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), budgetMs);
    timer.unref();
  });
  const got = await Promise.race([readOsRelease(files), timeout]);
  clearTimeout(timer);
  if (got?.distro) facts['distro'] = got.distro;
  if (got?.release) facts['release'] = got.release;
  return facts;
}

async function readOsRelease(files: readonly string[]): Promise<{ distro: string; release: string } | null> {
  for (const file of files) {
    const text = await fs.readFile(file, 'utf8').catch(() => null);
    if (text !== null) return distroOf(parseOsRelease(text));
  }
  return null;
}

/** `KEY=value` lines, values unquoted; comments and other lines skipped. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!.trim();
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) v = v.slice(1, -1).replace(/\\(["'$`\\])/g, '$1');
    out[m[1]!] = v;
  }
  return out;
}

/**
 * The names hosts already report (they are what systeminformation made of the same file):
 * distro = NAME ("Debian GNU/Linux"); release = PRETTY_NAME less the name and any "(codename)"
 * ("12", "22.04.4 LTS"), else VERSION less its "(codename)", else VERSION_ID.
 */
export function distroOf(r: Record<string, string>): { distro: string; release: string } {
  const distro = r['NAME'] ?? '';
  let release = r['VERSION'] ?? '';
  const pretty = r['PRETTY_NAME'] ?? '';
  if (distro && pretty.startsWith(`${distro} `)) release = pretty.slice(distro.length + 1).trim();
  release = release.split('(')[0]!.trim();
  return { distro, release: release || r['VERSION_ID'] || '' };
}
