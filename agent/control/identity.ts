// The host identity the agent runs with: loaded from the state dir, or obtained by joining when the
// state dir holds no host certificate yet.
import { X509Certificate } from 'node:crypto';
import { Backoff } from '../../shared/backoff.js';
import { HmError } from '../../shared/errors.js';
import type { HostConfig } from '../../shared/host-config.js';
import { parseSpiffeId } from '../../shared/identity.js';
import type { Logger } from '../../shared/log.js';
import { sleep } from '../clock.js';
import { certBlocks, fingerprintOfDer, parseCert, trustDomainOfRoot } from '../certs/pem.js';
import type { CertPair, StateStore } from '../state/store.js';
import { JOIN_BACKOFF, joinMesh, type JoinOptions } from './join.js';
import { fetchPinnedRoot } from './pin.js';

export interface HostIdentity {
  pair: CertPair;
  caBundle: string[];
  trustDomain: string;
  /** True when this start joined the mesh. */
  joined: boolean;
}

export async function ensureIdentity(opts: JoinOptions): Promise<HostIdentity> {
  const { config, store, log } = opts;
  const pair = await store.readHostPair();
  if (!pair) {
    log.info({ server: config.server, host: config.name }, 'no host certificate in the state dir; joining the mesh');
    const j = await joinMesh(opts);
    return { pair: j.pair, caBundle: j.caBundle, trustDomain: j.info.trustDomain, joined: true };
  }
  const leaf = parseCert(certBlocks(pair.chainPem)[0]!);
  const id = leaf.uris.map(parseSpiffeId).find((x) => x?.kind === 'host') ?? null;
  if (id && id.name !== config.name) {
    throw new HmError(
      'HM_ERR_CONFIG',
      `the state dir ${store.dir} belongs to host "${id.name}" but the config names "${config.name}": set name: ${id.name}, or give a new state dir and a join token to join as "${config.name}"`,
    );
  }
  const caBundle = (await store.readCaBundle()) ?? (await refetchRoot(opts));
  // Not fatal: after a root rotation the pinned root may rightly have left the bundle.
  if (!caBundle.some((pem) => fingerprintOfDer(new X509Certificate(pem).raw) === config.caFingerprint)) {
    log.warn({ caFingerprint: config.caFingerprint }, 'no root in ca.pem has the configured caFingerprint: is this state dir from another mesh?');
  }
  const info = await store.readHostInfo();
  const trustDomain = id?.trustDomain ?? info?.trustDomain ?? trustDomainOfRoot(caBundle[0]!);
  if (!trustDomain) throw new HmError('HM_ERR_STARTUP', `cannot tell the trust domain from the state dir ${store.dir}; move it away and join again`);
  log.info({ host: config.name, notAfter: new Date(leaf.notAfter).toISOString() }, 'loaded the host identity from the state dir');
  return { pair, caBundle, trustDomain, joined: false };
}

/** ca.pem was lost (the certs were not): the pin is enough to get the root back, no token needed. */
async function refetchRoot(opts: JoinOptions): Promise<string[]> {
  const { config, store, log } = opts;
  const backoff = new Backoff({ ...JOIN_BACKOFF, ...(opts.random ? { random: opts.random } : {}) });
  log.warn({ stateDir: store.dir }, 'ca.pem is missing from the state dir; fetching the pinned root again');
  for (;;) {
    try {
      const pinned = await fetchPinnedRoot(config.server, config.caFingerprint);
      await store.writeCaBundle([pinned.rootPem]);
      return [pinned.rootPem];
    } catch (e) {
      if (e instanceof HmError || opts.signal?.aborted) throw e;
      const delay = backoff.next();
      log.warn({ err: (e as Error).message, retryInMs: delay }, 'cannot reach the server for its root; retrying');
      await sleep(delay, opts.signal);
    }
  }
}
