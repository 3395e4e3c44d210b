// One HTTP(S) POST, its answer read whole up to a bound. The agent's only two HTTP calls (the
// join, and span export to an OTLP collector) go through node:http(s) rather than undici: bundled,
// undici was 40 % of the agent's source text, which V8 keeps in the heap whether or not it runs.
import http from 'node:http';
import https from 'node:https';

export interface PostOptions {
  /** Trust only these roots (PEM); default: Node's bundled roots. */
  ca?: string;
  /** No answer, or no byte of it, for this long fails the call with ETIMEDOUT. */
  timeoutMs: number;
  /** An answer body larger than this fails the call (the peer is not who we think it is). */
  maxBytes: number;
  contentType: string;
  signal?: AbortSignal;
  /** Keep connections for the next call (of the URL's protocol); default: one connection per call. */
  agent?: http.Agent;
}

export interface PostAnswer {
  statusCode: number;
  text: string;
}

export function postOnce(url: string, body: string, o: PostOptions): Promise<PostAnswer> {
  const u = new URL(url);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return Promise.reject(new TypeError(`cannot POST to ${u.protocol} URL ${url}`));
  // A caller that pins roots means TLS: never fall back to cleartext for it.
  if (o.ca !== undefined && u.protocol !== 'https:') return Promise.reject(new TypeError(`roots are pinned for ${url}, which is not https`));
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions = {
      method: 'POST',
      agent: o.agent ?? false,
      timeout: o.timeoutMs,
      headers: { 'content-type': o.contentType, 'content-length': Buffer.byteLength(body) },
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    };
    const req = u.protocol === 'https:' ? https.request(u, options) : http.request(u, options);
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer from ${u.host} within ${o.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > o.maxBytes) req.destroy(new Error(`answer from ${u.host} larger than ${o.maxBytes} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.end(body);
  });
}
