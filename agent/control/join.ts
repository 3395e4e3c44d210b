// Joining: once per host, when the state dir holds no host certificate. Pin the server's root,
// make a key and CSR here (the key never leaves the host), trade the join token for a host cert.
// Refusals (bad token, wrong scope, name taken) do not fix themselves, so they end the agent with a
// line telling the operator what to do; an unreachable or failing server is retried with backoff.
import { Backoff } from '../../shared/backoff.js';
import { generateKeyAndCsr } from '../../shared/csr.js';
import { HmError } from '../../shared/errors.js';
import type { HostConfig } from '../../shared/host-config.js';
import { formatSpiffeId } from '../../shared/identity.js';
import type { Logger } from '../../shared/log.js';
import { JOIN_PATH, type JoinRequest, type JoinResponse } from '../../shared/protocol.js';
import { sleep } from '../clock.js';
import { postOnce, type PostAnswer } from '../http-post.js';
import { certBlocks, issuedByAny, keyMatchesCert, parseCert } from '../certs/pem.js';
import type { CertPair, HostInfo, StateStore } from '../state/store.js';
import { fetchPinnedRoot, type PinnedRoot } from './pin.js';

export const JOIN_BACKOFF = { baseMs: 500, capMs: 30_000 } as const;
const HTTP_TIMEOUT_MS = 15_000;

export interface JoinOptions {
  config: HostConfig;
  store: StateStore;
  log: Logger;
  /** Aborts the retry loop (SIGTERM while the server is still unreachable). */
  signal?: AbortSignal;
  random?: () => number;
  fetchRoot?: (serverUrl: string, fingerprint: string) => Promise<PinnedRoot>;
}

export interface Joined {
  pair: CertPair;
  caBundle: string[];
  info: HostInfo;
}

export async function joinMesh(opts: JoinOptions): Promise<Joined> {
  const { config, log } = opts;
  if (config.token === null) {
    throw new HmError(
      'HM_ERR_CONFIG',
      `this host has not joined the mesh and has no join token: create one on the server with \`hostmesh token create\` and give it as token: in the host config or with --token`,
    );
  }
  const fetchRoot = opts.fetchRoot ?? fetchPinnedRoot;
  const backoff = new Backoff({ ...JOIN_BACKOFF, ...(opts.random ? { random: opts.random } : {}) });
  const services = config.services.map((s) => s.name);
  let keys: { keyPem: string; csrPem: string } | null = null;
  for (;;) {
    try {
      const pinned = await fetchRoot(config.server, config.caFingerprint);
      keys ??= await generateKeyAndCsr(
        pinned.trustDomain === null ? undefined : formatSpiffeId({ trustDomain: pinned.trustDomain, kind: 'host', name: config.name }),
      );
      const body: JoinRequest = { token: config.token, host: config.name, csr: keys.csrPem, services };
      const res = await postJoin(config, pinned.rootPem, body, opts.signal);
      const joined = accept(config, pinned, keys.keyPem, res);
      // The host cert is the "joined" marker, so it is written last: a crash before it means join again.
      await opts.store.writeCaBundle(joined.caBundle);
      await opts.store.writeHostInfo(joined.info);
      await opts.store.writeHostPair(joined.pair);
      log.info({ host: res.host, spiffeId: res.spiffeId, notAfter: res.notAfter }, 'joined the mesh');
      return joined;
    } catch (e) {
      if (!isRetryable(e) || opts.signal?.aborted) {
        if (e instanceof HmError) log.error({ code: e.code }, e.message);
        throw e;
      }
      const delay = backoff.next();
      log.warn({ server: config.server, attempt: backoff.attempts, retryInMs: delay, err: describe(e) }, 'cannot join the mesh yet; retrying');
      await sleep(delay, opts.signal);
    }
  }
}

/** Only an unreachable or failing server is worth another try; HM_ERR_UNAVAILABLE says so. */
function isRetryable(e: unknown): boolean {
  return !(e instanceof HmError) || e.code === 'HM_ERR_UNAVAILABLE';
}

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ? `${err.code}: ${err.message}` : String(err.message ?? e);
}

async function postJoin(config: HostConfig, rootPem: string, body: JoinRequest, signal: AbortSignal | undefined): Promise<JoinResponse> {
  let res: PostAnswer;
  try {
    // Trusting only the mesh root. A join answer is a few KB of certificates; far more is not our server.
    res = await postOnce(`${config.server}${JOIN_PATH}`, JSON.stringify(body), { ca: rootPem, timeoutMs: HTTP_TIMEOUT_MS, maxBytes: 1 << 20, contentType: 'application/json', ...(signal ? { signal } : {}) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      throw new HmError('HM_ERR_CONFIG', `the server's certificate does not name the address in ${config.server}: use an address the server advertises (see its --advertise)`, { cause: e });
    }
    throw e;
  }
  const { statusCode, text } = res;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (statusCode === 201 || statusCode === 200) return parsed as JoinResponse;
  const err = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof err?.code === 'string' ? err.code : `HTTP ${statusCode}`;
  const message = typeof err?.message === 'string' ? err.message : text.slice(0, 200) || 'no details';
  if (statusCode >= 500 || statusCode === 408 || statusCode === 429) {
    throw new HmError('HM_ERR_UNAVAILABLE', `server answered ${statusCode} ${code}: ${message}`);
  }
  throw refusal(config, statusCode, code, message);
}

function refusal(config: HostConfig, status: number, code: string, message: string): HmError {
  const services = config.services.map((s) => s.name).join(',');
  switch (code) {
    case 'HM_ERR_TOKEN_INVALID':
      return new HmError(code, `the server refused the join token (${message}): create a new one with \`hostmesh token create\` and give it as token: in the host config or with --token`);
    case 'HM_ERR_TOKEN_SCOPE':
      return new HmError(code, `the join token does not allow this host's services (${message}): create one with \`hostmesh token create --services ${services}\`, or remove the other services from the host config`);
    case 'HM_ERR_HOST_EXISTS':
      return new HmError(code, `a host named "${config.name}" has already joined (${message}): give this host another name (name: or --name), or remove the old host on the server first`);
    case 'HM_ERR_CSR_INVALID':
    case 'HM_ERR_IDENTITY':
      return new HmError('HM_ERR_CSR_INVALID', `the server refused this agent's certificate request (${message}): run an agent of the server's version`);
    case 'HM_ERR_VALIDATION':
      return new HmError(code, `the server refused the join request (${message}): fix the host config and start the agent again`);
    default:
      return new HmError('HM_ERR_BAD_REQUEST', `the server refused the join request with ${status} ${code} (${message})`);
  }
}

/** Check the answer before anything is written: the cert must be ours, for us, and from the pinned root. */
function accept(config: HostConfig, pinned: PinnedRoot, keyPem: string, res: JoinResponse): Joined {
  const bad = (why: string): HmError => new HmError('HM_ERR_INTERNAL', `the server's join answer is unusable: ${why}`);
  if (!res || typeof res.certPem !== 'string' || !Array.isArray(res.caBundle) || typeof res.trustDomain !== 'string') throw bad('fields are missing');
  const leafPem = certBlocks(res.certPem)[0];
  if (!leafPem) throw bad('certPem holds no certificate');
  const leaf = parseCert(leafPem);
  if (!keyMatchesCert(keyPem, leaf.x509)) throw bad('the certificate is not for the key this agent made');
  if (!issuedByAny(leaf.x509, [parseCert(pinned.rootPem).x509])) throw bad('the certificate is not signed by the pinned CA');
  if (pinned.trustDomain !== null && pinned.trustDomain !== res.trustDomain) throw bad(`trust domain ${res.trustDomain} differs from the root's ${pinned.trustDomain}`);
  const chainPem = typeof res.chainPem === 'string' && certBlocks(res.chainPem)[0] === leafPem ? res.chainPem : leafPem + pinned.rootPem;
  const caBundle = [...new Set([...res.caBundle.flatMap(certBlocks), pinned.rootPem])];
  return {
    pair: { keyPem, chainPem },
    caBundle,
    info: { name: config.name, server: config.server, trustDomain: res.trustDomain, joinedAt: new Date().toISOString() },
  };
}
