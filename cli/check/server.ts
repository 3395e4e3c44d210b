// The server as this host sees it: reachable, the root it chains to is the pinned one, its API
// answers over TLS verified against that root, and its clock agrees with ours.
import { fetchPinnedRoot, hostPortOf } from '../../agent/control/pin.js';
import { HmError } from '../../shared/errors.js';
import type { HostConfig } from '../../shared/host-config.js';
import { humanMs } from './host-cert.js';
import { getServer, PROBE_TIMEOUT_MS } from './probes.js';
import { fail, pass, skip, type CheckItem } from './result.js';

/** Certificates are backdated a minute (server/ca/leaf.ts), so more skew than that breaks fresh ones. */
export const MAX_CLOCK_SKEW_MS = 30_000;

export interface ServerFacts {
  items: CheckItem[];
  /** The pinned root's PEM once the pin matched, for later verified requests. */
  rootPem: string | null;
}

export async function checkServer(config: HostConfig, configFile: string, now: () => number = Date.now): Promise<ServerFacts> {
  const reach = `server reachable`;
  const pin = 'CA pin';
  const clock = 'clock skew';
  const where = config.server;
  let rootPem: string;
  try {
    rootPem = (await fetchPinnedRoot(config.server, config.caFingerprint, PROBE_TIMEOUT_MS)).rootPem;
  } catch (e) {
    if (e instanceof HmError && e.code === 'HM_ERR_PIN_MISMATCH') {
      return {
        rootPem: null,
        items: [
          pass(reach, `${where} answers TLS`),
          fail(pin, `${where} does not chain to ${config.caFingerprint}`, `copy the fingerprint \`hostmesh status\` prints on the server into caFingerprint: in ${configFile}; if it already matches, ${where} is not your hostmesh server`),
          skip(clock, 'not checked (the server is not trusted)'),
        ],
      };
    }
    return {
      rootPem: null,
      items: [
        fail(reach, `${where}: ${netError(e)}`, unreachableFix(config, configFile, e)),
        skip(pin, 'not checked (the server is unreachable)'),
        skip(clock, 'not checked (the server is unreachable)'),
      ],
    };
  }
  const pinned = pass(pin, `the server chains to ${config.caFingerprint.slice(0, 23)}…`);
  try {
    const r = await getServer(config.server, '/healthz', rootPem, now);
    if (r.status !== 200) return { rootPem, items: [fail(reach, `${where}/healthz answered ${r.status}`, 'see the server log: journalctl -u hostmesh-server'), pinned, skip(clock, 'not checked')] };
    const items = [pass(reach, `${where} answers`), pinned];
    if (r.serverTime === null) items.push(skip(clock, 'the server sent no Date header'));
    else {
      const skew = r.localMidpoint - r.serverTime;
      // The Date header has 1 s resolution (±0.5 s around its middle): allow for it.
      const side = skew >= 0 ? 'ahead of' : 'behind';
      const text = `this host is ${Math.abs(skew) < 60_000 ? `${(Math.abs(skew) / 1000).toFixed(1)} s` : humanMs(skew)} ${side} the server`;
      items.push(
        Math.abs(skew) <= MAX_CLOCK_SKEW_MS + 1000
          ? pass(clock, `${text} (bound ${MAX_CLOCK_SKEW_MS / 1000} s)`)
          : fail(clock, `${text}; certificates need clocks within ${MAX_CLOCK_SKEW_MS / 1000} s`, 'sync the clocks of this host and the server with NTP (timedatectl set-ntp true, or chrony)'),
      );
    }
    return { rootPem, items };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const item =
      code === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? fail(reach, `the server's certificate does not name ${hostPortOf(config.server).host}`, `set server: in ${configFile} to an address the server advertises (hostmesh server --advertise ADDRESS)`)
        : fail(reach, `${where}/healthz: ${netError(e)}`, unreachableFix(config, configFile, e));
    return { rootPem, items: [item, pinned, skip(clock, 'not checked (the server does not answer)')] };
  }
}

function netError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEDOUT':
      return `no answer within ${PROBE_TIMEOUT_MS / 1000} s`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the name does not resolve';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to the host';
    default:
      return err.message || String(e);
  }
}

function unreachableFix(config: HostConfig, configFile: string, e: unknown): string {
  const { port } = hostPortOf(config.server);
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `correct server: in ${configFile}, or make the name resolve on this host`;
  return `check that the server runs (systemctl status hostmesh-server on it) and that port ${port} is open from this host; or correct server: in ${configFile}`;
}
