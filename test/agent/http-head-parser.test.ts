// The strict head parser: requests split at any chunk boundary, pipelining with bodies, every
// refusal code, and response framing (RFC 9112 §6.3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HEAD_ERROR,
  HEAD_ERROR_STATUS,
  NEED_MORE,
  RequestHeadParser,
  ResponseHeadParser,
  parseContentLength,
  type HeadErrorCode,
  type RequestHead,
  type ResponseHead,
} from '../../agent/http/head-parser.js';
import { CHUNKED_ERROR, CHUNKED_NEED_MORE, ChunkedTracker } from '../../agent/http/chunked.js';

// ---------- helpers ----------

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Ways to cut a byte string into chunks: whole, one byte at a time, and every two-way split. */
function splits(buf: Buffer): Buffer[][] {
  const out: Buffer[][] = [[buf]];
  const ones: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) ones.push(buf.subarray(i, i + 1));
  out.push(ones);
  for (let i = 1; i < buf.length; i++) out.push([buf.subarray(0, i), buf.subarray(i)]);
  return out;
}

interface Message<H> {
  head: H;
  body: string;
}

/**
 * What the proxy does with a stream: head, then the body as its framing says, then the next head.
 * Returns the messages and, if the stream was refused, the code.
 */
function drive(chunks: Buffer[]): { messages: Message<RequestHead>[]; error: string | null } {
  const p = new RequestHeadParser();
  const t = new ChunkedTracker();
  const messages: Message<RequestHead>[] = [];
  let state: 'head' | 'length' | 'chunked' = 'head';
  let remaining = 0;
  let body: Buffer[] = [];
  let head: RequestHead | null = null;
  const finish = (): void => {
    messages.push({ head: head as RequestHead, body: Buffer.concat(body).toString('latin1') });
    body = [];
    state = 'head';
  };
  for (const chunk of chunks) {
    let pos = 0;
    while (pos < chunk.length) {
      if (state === 'head') {
        const r = p.execute(chunk, pos);
        if (r === NEED_MORE) break;
        if (r === HEAD_ERROR) return { messages, error: p.error };
        head = p.head as RequestHead;
        pos = r;
        if (head.body === 'length') {
          state = 'length';
          remaining = head.contentLength;
        } else if (head.body === 'chunked') {
          state = 'chunked';
        } else {
          finish();
        }
      } else if (state === 'length') {
        const take = Math.min(remaining, chunk.length - pos);
        body.push(chunk.subarray(pos, pos + take));
        pos += take;
        remaining -= take;
        if (remaining === 0) finish();
      } else {
        const r = t.execute(chunk, pos);
        if (r === CHUNKED_ERROR) return { messages, error: t.error };
        if (r === CHUNKED_NEED_MORE) {
          body.push(chunk.subarray(pos));
          break;
        }
        body.push(chunk.subarray(pos, r));
        pos = r;
        finish();
      }
    }
  }
  return { messages, error: null };
}

function parseRequest(text: string): RequestHead {
  const p = new RequestHeadParser();
  const buf = b(text);
  const r = p.execute(buf);
  assert.equal(p.error, null, `refused: ${p.error}`);
  assert.equal(r, buf.length);
  return p.head as RequestHead;
}

function refusal(text: string, limits?: { maxHeadSize?: number; maxHeaders?: number }): HeadErrorCode | null {
  const p = new RequestHeadParser(limits);
  const r = p.execute(b(text));
  if (r === HEAD_ERROR) return p.error;
  assert.notEqual(r, NEED_MORE, 'expected a complete head or a refusal');
  return null;
}

function parseResponse(text: string, requestMethod = 'GET'): ResponseHead {
  const p = new ResponseHeadParser();
  p.requestMethod = requestMethod;
  const buf = b(text);
  const r = p.execute(buf);
  assert.equal(p.error, null, `refused: ${p.error}`);
  assert.equal(r, buf.length);
  return p.head as ResponseHead;
}

// ---------- requests ----------

const GET = 'GET /a/b?x=1 HTTP/1.1\r\nHost: web.local:8080\r\nUser-Agent:  curl/8  \r\nAccept: */*\r\nX-Empty:\r\n\r\n';

test('a request head parses the same at every chunk boundary, one byte at a time included', () => {
  for (const chunks of splits(b(GET))) {
    const { messages, error } = drive(chunks);
    assert.equal(error, null);
    assert.equal(messages.length, 1);
    const h = (messages[0] as Message<RequestHead>).head;
    assert.equal(h.method, 'GET');
    assert.equal(h.target, '/a/b?x=1');
    assert.equal(h.version, '1.1');
    assert.equal(h.host, 'web.local:8080');
    assert.deepEqual(h.headers, ['host', 'web.local:8080', 'user-agent', 'curl/8', 'accept', '*/*', 'x-empty', '']);
    assert.equal(h.body, 'none');
    assert.equal(h.contentLength, -1);
    assert.equal(h.keepAlive, true);
    assert.equal(h.upgrade, null);
    assert.equal(h.expectContinue, false);
    assert.equal(h.headSize, GET.length);
  }
});

test('pipelined requests with length and chunked bodies split into the right messages at any boundary', () => {
  const stream =
    'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world' +
    'PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext="a b"\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 9\r\n\r\n' +
    '\r\nGET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
  for (const chunks of splits(b(stream))) {
    const { messages, error } = drive(chunks);
    assert.equal(error, null);
    assert.deepEqual(
      messages.map((m) => [m.head.method, m.head.target, m.head.body, m.body, m.head.keepAlive]),
      [
        ['POST', '/upload', 'length', 'hello world', true],
        ['PUT', '/c', 'chunked', '5;ext="a b"\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 9\r\n\r\n', true],
        ['GET', '/after', 'none', '', false],
      ],
    );
  }
});

test('a head and the start of its body in one chunk: execute returns where the body starts', () => {
  const p = new RequestHeadParser();
  const buf = b('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET');
  const r = p.execute(buf);
  assert.equal(buf.subarray(r).toString(), 'abcGET');
  assert.equal(p.head?.contentLength, 3);
  // the same parser then takes the next head from an offset
  assert.equal(p.execute(b('xxxGET / HTTP/1.1\r\nHost: a\r\n\r\n'), 3), 30);
  assert.equal(p.head?.target, '/');
});

test('connection persistence, upgrade and expect', () => {
  assert.equal(parseRequest('GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n').keepAlive, false);
  assert.equal(parseRequest('GET / HTTP/1.0\r\n\r\n').keepAlive, false);
  assert.equal(parseRequest('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive, true);
  assert.equal(parseRequest('GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n').keepAlive, false);

  const ws = parseRequest('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n');
  assert.equal(ws.upgrade, 'websocket');
  // Upgrade without Connection: upgrade is not a request to switch; nor is anything in HTTP/1.0
  assert.equal(parseRequest('GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n').upgrade, null);
  assert.equal(parseRequest('GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n').upgrade, null);

  assert.equal(parseRequest('PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n').expectContinue, true);
  assert.equal(parseRequest('PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n').expectContinue, false);
});

test('leading empty lines are skipped; identical Content-Lengths collapse to one', () => {
  const h = parseRequest('\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(h.method, 'GET');
  assert.equal(h.headSize, 4 + 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'.length);

  const dup = parseRequest('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX: 1\r\ncontent-length: 5\r\n\r\n');
  assert.deepEqual(dup.headers, ['host', 'a', 'content-length', '5', 'x', '1']);
  const list = parseRequest('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n');
  assert.deepEqual(list.headers, ['host', 'a', 'content-length', '5']);
  assert.equal(list.contentLength, 5);
  assert.equal(parseRequest('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n').body, 'none');
});

test('obs-text in values is kept byte for byte', () => {
  const h = parseRequest('GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9\tau lait\r\n\r\n');
  assert.equal(h.headers[3], 'caf\xe9\tau lait');
});

// ---------- refusals ----------

test('every refusal code', () => {
  const cases: Array<[string, HeadErrorCode]> = [
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 'CL_AND_TE'],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n', 'CL_AND_TE'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 'DUPLICATE_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n', 'DUPLICATE_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 'BAD_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n', 'BAD_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n', 'BAD_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456\r\n\r\n', 'BAD_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n', 'BAD_CONTENT_LENGTH'],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 'BAD_TRANSFER_ENCODING'],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'BAD_TRANSFER_ENCODING'],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n', 'BAD_TRANSFER_ENCODING'],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 'BAD_TRANSFER_ENCODING'],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n', 'BAD_TRANSFER_ENCODING'],
    ['POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 'BAD_TRANSFER_ENCODING'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n', 'OBS_FOLD'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n\ttwo\r\n\r\n', 'OBS_FOLD'],
    ['GET / HTTP/1.1\r\n Host: a\r\n\r\n', 'OBS_FOLD'],
    ['GET / HTTP/1.1\r\nHost : a\r\n\r\n', 'BAD_HEADER'],
    ['GET / HTTP/1.1\r\nHost\t: a\r\n\r\n', 'BAD_HEADER'],
    ['GET / HTTP/1.1\r\nHost: a\r\nNo-Colon\r\n\r\n', 'BAD_HEADER'],
    ['GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n', 'BAD_HEADER'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n', 'BAD_HEADER'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n', 'BAD_HEADER'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n', 'BAD_HEADER'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n', 'BAD_HEADER'],
    ['GET / HTTP/1.1\nHost: a\n\n', 'BARE_LF'],
    ['GET / HTTP/1.1\r\nHost: a\n\r\n', 'BARE_LF'],
    ['GET / HTTP/1.1\r\nHost: a\r\n\n', 'BARE_LF'],
    ['GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 'BAD_REQUEST_LINE'],
    ['GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 'BAD_REQUEST_LINE'],
    ['GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n', 'BAD_REQUEST_LINE'],
    [' GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'BAD_REQUEST_LINE'],
    ['GET /\r\n\r\n', 'BAD_REQUEST_LINE'],
    ['G@T / HTTP/1.1\r\nHost: a\r\n\r\n', 'BAD_REQUEST_LINE'],
    ['GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n', 'BAD_REQUEST_LINE'],
    ['GET / http/1.1\r\nHost: a\r\n\r\n', 'BAD_REQUEST_LINE'],
    ['GET /\rx HTTP/1.1\r\nHost: a\r\n\r\n', 'BAD_REQUEST_LINE'],
    ['GET / HTTP/2.0\r\nHost: a\r\n\r\n', 'BAD_VERSION'],
    ['GET / HTTP/1.2\r\nHost: a\r\n\r\n', 'BAD_VERSION'],
    ['GET / HTTP/1.10\r\nHost: a\r\n\r\n', 'BAD_VERSION'],
    ['GET / HTTP/1.1\r\n\r\n', 'BAD_HOST'],
    ['GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', 'BAD_HOST'],
    ['GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n', 'BAD_HOST'],
    ['GET / HTTP/1.1\r\nHost:\r\n\r\n', 'BAD_HOST'],
    ['GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 'BAD_HOST'],
    ['GET / HTTP/1.1\r\nHost: user@a\r\n\r\n', 'BAD_HOST'],
  ];
  for (const [text, code] of cases) {
    assert.equal(refusal(text), code, JSON.stringify(text));
    assert.ok(HEAD_ERROR_STATUS[code] >= 400);
  }
});

test('bare LF is refused as soon as it is seen, across a chunk boundary too', () => {
  const p = new RequestHeadParser();
  // the first line alone is enough: no waiting for a CRLFCRLF that will never come
  assert.equal(p.execute(b('GET / HTTP/1.1\nHo')), HEAD_ERROR);
  assert.equal(p.error, 'BARE_LF');

  const q = new RequestHeadParser();
  assert.equal(q.execute(b('GET / HTTP/1.1')), NEED_MORE);
  assert.equal(q.execute(b('\nHost: a\r\n\r\n')), HEAD_ERROR);
  assert.equal(q.error, 'BARE_LF');

  const ok = new RequestHeadParser();
  assert.equal(ok.execute(b('GET / HTTP/1.1\r')), NEED_MORE);
  assert.equal(ok.execute(b('\nHost: a\r\n\r\n')), 12);
});

test('head size limit: exactly the limit passes, one byte more is refused, without waiting for the end', () => {
  const base = 'GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n';
  const limit = 200;
  const exact = base.replace('X: ', 'X: ' + 'v'.repeat(limit - base.length));
  assert.equal(exact.length, limit);
  assert.equal(refusal(exact, { maxHeadSize: limit }), null);
  assert.equal(refusal(exact.replace('X: ', 'X: v'), { maxHeadSize: limit }), 'HEAD_TOO_LARGE');

  // default 32 KiB, fed in pieces, never terminated: refused once over
  const p = new RequestHeadParser();
  assert.equal(p.execute(b('GET / HTTP/1.1\r\nHost: a\r\nX: ')), NEED_MORE);
  let r = NEED_MORE;
  let fed = 0;
  while (r === NEED_MORE && fed < 64 * 1024) {
    r = p.execute(Buffer.alloc(1000, 0x61));
    fed += 1000;
  }
  assert.equal(r, HEAD_ERROR);
  assert.equal(p.error, 'HEAD_TOO_LARGE');
  assert.ok(fed <= 33 * 1024);
  // and it stays refused until reset
  assert.equal(p.execute(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n')), HEAD_ERROR);
  p.reset();
  assert.equal(p.execute(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n')), 27);
});

test('header count limit: 100 pass, 101 are refused', () => {
  const head = (n: number): string => 'GET / HTTP/1.1\r\nHost: a\r\n' + Array.from({ length: n - 1 }, (_, i) => `X-${i}: ${i}\r\n`).join('') + '\r\n';
  assert.equal(refusal(head(100)), null);
  assert.equal(refusal(head(101)), 'TOO_MANY_HEADERS');
  assert.equal(refusal(head(4), { maxHeaders: 3 }), 'TOO_MANY_HEADERS');
});

test('parseContentLength', () => {
  assert.equal(parseContentLength('0'), 0);
  assert.equal(parseContentLength('007'), 7);
  assert.equal(parseContentLength('12 ,\t12'), 12);
  assert.equal(parseContentLength('1 2'), -1);
  assert.equal(parseContentLength('+1'), -1);
  assert.equal(parseContentLength('1,2'), -2);
  assert.equal(parseContentLength('999999999999999'), 999999999999999);
});

// ---------- responses ----------

test('response framing follows RFC 9112 §6.3', () => {
  const cl = parseResponse('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n');
  assert.deepEqual([cl.status, cl.reason, cl.body, cl.contentLength, cl.keepAlive], [200, 'OK', 'length', 12, true]);

  const ch = parseResponse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
  assert.equal(ch.body, 'chunked');

  const eof = parseResponse('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n');
  assert.deepEqual([eof.body, eof.keepAlive], ['until-close', false]);

  // HEAD: no body whatever the headers say
  const head = parseResponse('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n', 'HEAD');
  assert.deepEqual([head.body, head.contentLength, head.keepAlive], ['none', 12, true]);
  assert.equal(parseResponse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'HEAD').body, 'none');
  assert.equal(parseResponse('HTTP/1.1 200 OK\r\n\r\n', 'HEAD').keepAlive, true);

  const nc = parseResponse('HTTP/1.1 204 No Content\r\n\r\n');
  assert.deepEqual([nc.body, nc.keepAlive], ['none', true]);
  assert.equal(parseResponse('HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n').body, 'none');

  const cont = parseResponse('HTTP/1.1 100 Continue\r\n\r\n');
  assert.deepEqual([cont.body, cont.interim, cont.tunnel], ['none', true, false]);
  const hints = parseResponse('HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n');
  assert.equal(hints.interim, true);

  const sw = parseResponse('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  assert.deepEqual([sw.body, sw.interim, sw.tunnel, sw.upgrade, sw.keepAlive], ['none', false, true, 'websocket', false]);

  const tunnel = parseResponse('HTTP/1.1 200 Connection established\r\n\r\n', 'CONNECT');
  assert.deepEqual([tunnel.body, tunnel.tunnel], ['none', true]);
  assert.equal(parseResponse('HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n', 'CONNECT').tunnel, false);

  const old = parseResponse('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n');
  assert.deepEqual([old.version, old.keepAlive], ['1.0', false]);
  assert.equal(parseResponse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n').keepAlive, true);
  assert.equal(parseResponse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n').keepAlive, false);

  // no reason phrase, with or without its space
  assert.equal(parseResponse('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').reason, '');
  assert.equal(parseResponse('HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n').reason, '');
});

test('an interim response then the final one, from one stream split anywhere', () => {
  const stream = b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
  for (const chunks of splits(stream)) {
    const p = new ResponseHeadParser();
    p.requestMethod = 'POST';
    const statuses: number[] = [];
    let rest = '';
    for (const chunk of chunks) {
      let pos = 0;
      while (pos < chunk.length) {
        if (statuses.length === 2) {
          rest += chunk.subarray(pos).toString();
          break;
        }
        const r = p.execute(chunk, pos);
        if (r === NEED_MORE) break;
        assert.notEqual(r, HEAD_ERROR);
        statuses.push((p.head as ResponseHead).status);
        pos = r;
      }
    }
    assert.deepEqual(statuses, [100, 201]);
    assert.equal(rest, 'ok');
  }
});

test('response refusals', () => {
  const cases: Array<[string, HeadErrorCode]> = [
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 'CL_AND_TE'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'DUPLICATE_CONTENT_LENGTH'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'BAD_TRANSFER_ENCODING'],
    ['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'BAD_TRANSFER_ENCODING'],
    ['HTTP/1.1 20 OK\r\n\r\n', 'BAD_STATUS_LINE'],
    ['HTTP/1.1 2000 OK\r\n\r\n', 'BAD_STATUS_LINE'],
    ['HTTP/1.1 099 Low\r\n\r\n', 'BAD_STATUS_LINE'],
    ['HTTP/1.1 600 High\r\n\r\n', 'BAD_STATUS_LINE'],
    ['HTTP/1.1 200 O\x01K\r\n\r\n', 'BAD_STATUS_LINE'],
    ['HTTP/1.1\r\n\r\n', 'BAD_STATUS_LINE'],
    ['ICY 200 OK\r\n\r\n', 'BAD_STATUS_LINE'],
    ['HTTP/2 200\r\n\r\n', 'BAD_VERSION'],
    ['HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n', 'OBS_FOLD'],
    ['HTTP/1.1 200 OK\r\nX : a\r\n\r\n', 'BAD_HEADER'],
    ['HTTP/1.1 200 OK\nX: a\n\n', 'BARE_LF'],
  ];
  for (const [text, code] of cases) {
    const p = new ResponseHeadParser();
    assert.equal(p.execute(b(text)), HEAD_ERROR, JSON.stringify(text));
    assert.equal(p.error, code, JSON.stringify(text));
  }
});
