// The chunked-body tracker: finds the end of a chunked body across any split, with extensions and
// trailers, and refuses every malformed framing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHUNKED_ERROR, CHUNKED_NEED_MORE, ChunkedTracker, type ChunkedErrorCode } from '../../agent/http/chunked.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Feed `chunks`; return the body end as an offset into their concatenation, or the error code. */
function endOf(chunks: Buffer[], t = new ChunkedTracker()): number | ChunkedErrorCode {
  let base = 0;
  for (const chunk of chunks) {
    const r = t.execute(chunk);
    if (r === CHUNKED_ERROR) return t.error as ChunkedErrorCode;
    if (r !== CHUNKED_NEED_MORE) return base + r;
    base += chunk.length;
  }
  return CHUNKED_NEED_MORE;
}

function splits(buf: Buffer): Buffer[][] {
  const out: Buffer[][] = [[buf]];
  const ones: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) ones.push(buf.subarray(i, i + 1));
  out.push(ones);
  for (let i = 1; i < buf.length; i++) out.push([buf.subarray(0, i), buf.subarray(i)]);
  return out;
}

const NEXT = 'GET /next HTTP/1.1\r\n';

test('finds the end of a body with extensions and trailers, at every split', () => {
  const body =
    '5;name=value;q="a;b c"\r\nhello\r\n' + // extensions, with a quoted string
    '1A \t;x\r\n' + // BWS before ';', upper-case hex
    'abcdefghijklmnopqrstuvwxyz\r\n' +
    '000\r\n' + // last chunk with leading zeros
    'X-Checksum: 1234\r\nx-other:\tv v\r\n\r\n';
  const buf = b(body + NEXT);
  for (const chunks of splits(buf)) {
    const t = new ChunkedTracker();
    assert.equal(endOf(chunks, t), body.length);
    assert.equal(t.dataBytes, 5 + 26);
    assert.equal(t.trailers, true);
  }
});

test('forbidden trailer names are refused whatever their case or split; others pass', () => {
  const forbid = (name: string): boolean => name === 'x-hostmesh-source';
  for (const trailer of ['X-Hostmesh-Source: admin', 'x-hostmesh-source:admin']) {
    const buf = b(`3\r\nabc\r\n0\r\nX-Checksum: 1\r\n${trailer}\r\n\r\n`);
    for (const chunks of splits(buf)) assert.equal(endOf(chunks, new ChunkedTracker({ forbiddenTrailer: forbid })), 'FORBIDDEN_TRAILER');
  }
  const ok = b('3\r\nabc\r\n0\r\nX-Hostmesh-Sourcery: 1\r\n\r\n');
  for (const chunks of splits(ok)) assert.equal(endOf(chunks, new ChunkedTracker({ forbiddenTrailer: forbid })), ok.length);
  // Without the option, the name is not looked at.
  const plain = b('0\r\nX-Hostmesh-Source: admin\r\n\r\n');
  assert.equal(endOf([plain]), plain.length);
});

test('a body without trailers; the tracker is reused for the next body', () => {
  const t = new ChunkedTracker();
  const one = '3\r\nabc\r\n0\r\n\r\n';
  const two = '0\r\n\r\n';
  const buf = b(one + two + NEXT);
  const r1 = t.execute(buf);
  assert.equal(r1, one.length);
  assert.equal(t.dataBytes, 3);
  assert.equal(t.trailers, false);
  const r2 = t.execute(buf, r1);
  assert.equal(r2, one.length + two.length);
  assert.equal(t.dataBytes, 0);
});

test('large data is skipped without being looked at', () => {
  const t = new ChunkedTracker();
  assert.equal(t.execute(b('100000\r\n')), CHUNKED_NEED_MORE);
  assert.equal(t.execute(Buffer.alloc(0x100000 - 10, 0x0a)), CHUNKED_NEED_MORE); // LFs in data mean nothing
  assert.equal(t.execute(b('0123456789\r\n0\r\n\r\nrest')), 17);
  assert.equal(t.dataBytes, 0x100000);
});

test('refusals', () => {
  const long = 'x'.repeat(1025);
  const cases: Array<[string, ChunkedErrorCode]> = [
    ['\r\nabc', 'BAD_CHUNK_SIZE'], // no digits
    [';ext\r\n', 'BAD_CHUNK_SIZE'],
    ['g\r\n', 'BAD_CHUNK_SIZE'],
    ['-5\r\n', 'BAD_CHUNK_SIZE'],
    ['0x5\r\n', 'BAD_CHUNK_SIZE'],
    ['5\nhello\r\n', 'BAD_CHUNK_SIZE'], // bare LF
    ['5\rhello\r\n', 'BAD_CHUNK_SIZE'], // bare CR
    ['11111111111111111\r\n', 'BAD_CHUNK_SIZE'], // 17 digits
    ['fffffffffffffff\r\n', 'BAD_CHUNK_SIZE'], // over 2^53
    ['5 \r\nhello\r\n', 'BAD_CHUNK_EXT'], // BWS not followed by ';'
    ['5 x\r\n', 'BAD_CHUNK_EXT'],
    ['5;a\x00b\r\n', 'BAD_CHUNK_EXT'],
    ['5;a\nb\r\n', 'BAD_CHUNK_EXT'],
    [`5;${long}\r\nhello\r\n`, 'CHUNK_EXT_TOO_LONG'],
    ['5\r\nhelloX\r\n', 'BAD_CHUNK_DATA'],
    ['5\r\nhello\n0\r\n\r\n', 'BAD_CHUNK_DATA'],
    ['5\r\nhello\r\r\n', 'BAD_CHUNK_DATA'],
    ['0\r\n x: folded\r\n\r\n', 'BAD_TRAILER'],
    ['0\r\n: v\r\n\r\n', 'BAD_TRAILER'],
    ['0\r\nnocolon\r\n\r\n', 'BAD_TRAILER'],
    ['0\r\nx y: v\r\n\r\n', 'BAD_TRAILER'],
    ['0\r\nx: a\x01b\r\n\r\n', 'BAD_TRAILER'],
    ['0\r\nx: v\n\r\n', 'BAD_TRAILER'],
    ['0\r\n\n', 'BAD_TRAILER'],
    ['0\r\n\rX', 'BAD_TRAILER'],
  ];
  for (const [text, code] of cases) {
    for (const chunks of [[b(text)], splits(b(text))[1] as Buffer[]]) {
      assert.equal(endOf(chunks), code, JSON.stringify(text));
    }
  }
});

test('trailer limits', () => {
  const many = '0\r\n' + Array.from({ length: 33 }, (_, i) => `t${i}: v\r\n`).join('') + '\r\n';
  assert.equal(endOf([b(many)]), 'TRAILERS_TOO_LARGE');
  assert.equal(endOf([b(many)], new ChunkedTracker({ maxTrailers: 33 })), many.length);
  const big = `0\r\nx: ${'v'.repeat(9000)}\r\n\r\n`;
  assert.equal(endOf([b(big)]), 'TRAILERS_TOO_LARGE');
  assert.equal(endOf([b(big)], new ChunkedTracker({ maxTrailerSize: 10_000 })), big.length);
});

test('an error sticks until reset', () => {
  const t = new ChunkedTracker();
  assert.equal(t.execute(b('z')), CHUNKED_ERROR);
  assert.equal(t.execute(b('0\r\n\r\n')), CHUNKED_ERROR);
  t.reset();
  assert.equal(t.execute(b('0\r\n\r\n')), 5);
});
