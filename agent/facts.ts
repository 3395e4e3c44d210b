// Host facts for the server's inventory (`hostmesh get hosts`), sent in hello. systeminformation
// knows the distro; node:os answers at once, so it fills in whatever si has not said within the
// time budget (some of its probes spawn commands that can hang on a sick machine).
import os from 'node:os';
import { VERSION } from '../shared/version.js';

export const FACTS_BUDGET_MS = 2_000;

export type Facts = Record<string, string | number>;

export async function collectFacts(budgetMs = FACTS_BUDGET_MS): Promise<Facts> {
  const facts: Facts = {
    os: os.platform(),
    distro: os.type(),
    release: os.release(),
    kernel: os.release(),
    arch: os.arch(),
    cpus: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    hostname: os.hostname(),
    agentVersion: VERSION,
    nodeVersion: process.version,
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), budgetMs);
    timer.unref();
  });
  // Loaded on use: the library is large and the agent needs it once, for hello.
  const detailed = import('systeminformation').then(({ default: si }) => Promise.all([si.osInfo(), si.cpu(), si.mem()])).catch(() => null);
  const got = await Promise.race([detailed, timeout]);
  clearTimeout(timer);
  if (got) {
    const [o, c, m] = got;
    if (o.distro) facts['distro'] = o.distro;
    if (o.release) facts['release'] = o.release;
    if (o.kernel) facts['kernel'] = o.kernel;
    if (o.arch) facts['arch'] = o.arch;
    if (o.hostname) facts['hostname'] = o.hostname;
    if (c.cores > 0) facts['cpus'] = c.cores;
    if (m.total > 0) facts['memoryBytes'] = m.total;
  }
  return facts;
}
