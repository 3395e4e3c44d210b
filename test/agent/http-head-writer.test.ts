// The head writer: round trips through the parser, identity and hop-by-hop stripping, header edits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestHeadParser, ResponseHeadParser, type RequestHead, type ResponseHead } from '../../agent/http/head-parser.js';
import {
  HeaderFilter,
  IDENTITY_HEADERS,
  addHeader,
  encodeRequestHead,
  encodeResponseHead,
  getHeader,
  indexOfHeader,
  removeHeader,
  removeHeaderPrefix,
  serializeRequestHead,
  serializeResponseHead,
  setHeader,
  stripHopByHop,
} from '../../agent/http/head-writer.js';

function parse(text: string | Buffer): RequestHead {
  const p = new RequestHeadParser();
  const buf = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  assert.equal(p.execute(buf), buf.length, `refused: ${p.error}`);
  return p.head as RequestHead;
}

test('round trip: parse → serialize → parse gives the same head, bytes included', () => {
  const raw = 'POST /a?b=c HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\nX-Bin: caf\xe9\r\nAccept: */*\r\n\r\n';
  const h = parse(raw);
  const out = encodeRequestHead(h.method, h.target, h.version, h.headers);
  assert.equal(out.toString('latin1'), 'POST /a?b=c HTTP/1.1\r\nhost: svc\r\ncontent-length: 4\r\nx-bin: caf\xe9\r\naccept: */*\r\n\r\n');
  assert.equal(out[out.indexOf('caf') + 3], 0xe9); // obs-text byte survives
  const again = parse(out);
  assert.deepEqual(
    [again.method, again.target, again.version, again.headers, again.contentLength],
    [h.method, h.target, h.version, h.headers, h.contentLength],
  );
  assert.equal(serializeRequestHead('GET', '*', '1.0', []), 'GET * HTTP/1.0\r\n\r\n');
});

test('response heads serialize and parse back', () => {
  const s = serializeResponseHead(403, 'Forbidden', '1.1', ['content-length', '0', 'x-hostmesh-reason', 'RBAC_DENY_RULE']);
  assert.equal(s, 'HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nx-hostmesh-reason: RBAC_DENY_RULE\r\n\r\n');
  const p = new ResponseHeadParser();
  const buf = encodeResponseHead(200, 'OK', '1.0', ['content-length', '2']);
  assert.equal(p.execute(buf), buf.length);
  const h = p.head as ResponseHead;
  assert.deepEqual([h.status, h.reason, h.version, h.contentLength], [200, 'OK', '1.0', 2]);
});

test('identity headers a caller may forge are removed, the rest kept in order', () => {
  const h = parse(
    'GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert: By=spiffe://evil\r\nX-HostMesh-Source: admin\r\n' +
      'Accept: */*\r\nx-hostmesh-anything: 1\r\nX-Hostmeshy: kept\r\n\r\n',
  );
  assert.equal(IDENTITY_HEADERS.apply(h.headers), 3);
  assert.deepEqual(h.headers, ['host', 'a', 'accept', '*/*', 'x-hostmeshy', 'kept']);
  setHeader(h.headers, 'x-hostmesh-source', 'web');
  assert.equal(getHeader(h.headers, 'x-hostmesh-source'), 'web');

  // Spelled with underscores, as CGI-style servers would read them the same (HTTP_X_HOSTMESH_SOURCE).
  const u = parse('GET / HTTP/1.1\r\nHost: a\r\nX_Hostmesh_Source: admin\r\nx-hostmesh_caller: 1\r\nX_Forwarded_Client_Cert: By=x\r\nX_Other: kept\r\n\r\n');
  assert.equal(IDENTITY_HEADERS.apply(u.headers), 3);
  assert.deepEqual(u.headers, ['host', 'a', 'x_other', 'kept']);

  const f = new HeaderFilter(['X-One'], ['X-Pre-']);
  const hs = ['x-one', '1', 'x-pre-a', '2', 'x-pre', '3', 'y', '4'];
  assert.equal(f.apply(hs), 2);
  assert.deepEqual(hs, ['x-pre', '3', 'y', '4']);
});

test('hop-by-hop headers are stripped; te: trailers and framing survive', () => {
  const h = parse(
    'POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret, Content-Length, Host, Transfer-Encoding\r\n' +
      'Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate;q=0.5\r\nUpgrade: h2c\r\n' +
      'X-Secret: s\r\nContent-Length: 3\r\nX-Keep: k\r\n\r\n',
  );
  stripHopByHop(h.headers, h.upgrade);
  // Connection may not nominate the framing or Host: dropping them would desynchronize the upstream
  assert.deepEqual(h.headers, ['host', 'a', 'content-length', '3', 'x-keep', 'k', 'te', 'trailers']);

  const noTrailers = parse('GET / HTTP/1.1\r\nHost: a\r\nTE: gzip\r\n\r\n');
  stripHopByHop(noTrailers.headers, noTrailers.upgrade);
  assert.deepEqual(noTrailers.headers, ['host', 'a']);
});

test('an upgrade keeps Upgrade and says connection: upgrade', () => {
  const h = parse('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n');
  assert.equal(h.upgrade, 'websocket');
  stripHopByHop(h.headers, h.upgrade);
  assert.deepEqual(h.headers, ['host', 'a', 'upgrade', 'websocket', 'sec-websocket-key', 'k', 'connection', 'upgrade']);

  // with another nominated header beside it, Upgrade still stays and the other goes
  const h2c = parse('GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n\r\n');
  stripHopByHop(h2c.headers, h2c.upgrade);
  assert.deepEqual(h2c.headers, ['host', 'a', 'upgrade', 'h2c', 'connection', 'upgrade']);
});

test('header edits', () => {
  const hs = ['a', '1', 'b', '2', 'a', '3', 'x-hostmesh-z', '4'];
  assert.equal(indexOfHeader(hs, 'a'), 0);
  assert.equal(indexOfHeader(hs, 'a', 2), 4);
  assert.equal(indexOfHeader(hs, 'nope'), -1);
  setHeader(hs, 'a', 'new');
  assert.deepEqual(hs, ['a', 'new', 'b', '2', 'x-hostmesh-z', '4']);
  addHeader(hs, 'b', '5');
  assert.deepEqual(hs, ['a', 'new', 'b', '2', 'x-hostmesh-z', '4', 'b', '5']);
  assert.equal(removeHeader(hs, 'b'), 2);
  assert.equal(removeHeaderPrefix(hs, 'x-hostmesh-'), 1);
  assert.deepEqual(hs, ['a', 'new']);
  setHeader(hs, 'traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  assert.equal(hs.length, 4);

  assert.throws(() => setHeader(hs, 'x', 'a\r\nInjected: 1'), TypeError);
  assert.throws(() => addHeader(hs, 'x', 'nul\x00'), TypeError);
  assert.throws(() => addHeader(hs, 'X-Upper', 'v'), TypeError);
  assert.throws(() => addHeader(hs, 'bad name', 'v'), TypeError);
  assert.deepEqual(hs.length, 4);
});
