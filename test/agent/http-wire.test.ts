// Against a real peer: heads the writer produces are read by node:http as intended, and the
// parser plus chunked tracker find the boundaries of node:http's responses on a kept-alive
// connection, pipelined requests included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { CHUNKED_ERROR, CHUNKED_NEED_MORE, ChunkedTracker } from '../../agent/http/chunked.js';
import { HEAD_ERROR, NEED_MORE, RequestHeadParser, ResponseHeadParser, type ResponseHead } from '../../agent/http/head-parser.js';
import { IDENTITY_HEADERS, serializeRequestHead, setHeader, stripHopByHop } from '../../agent/http/head-writer.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

test('rewritten requests reach node:http intact; its responses are split at the right bytes', async () => {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(parts).toString() });
      if (req.method === 'HEAD') {
        res.setHeader('content-length', '5');
        res.end();
      } else if (req.url === '/chunked') {
        res.write('part one;');
        res.end('part two');
      } else {
        res.setHeader('content-length', '2');
        res.end('ok');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;

  try {
    // What a client sent to the agent, forged identity and hop-by-hop headers included.
    const client = Buffer.from(
      'POST //up/../chunked HTTP/1.1\r\nHost: web\r\nX-Hostmesh-Source: admin\r\nConnection: keep-alive, x-drop\r\nX-Drop: 1\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n4;e=1\r\nbody\r\n0\r\nx-t: 1\r\n\r\n' +
        'HEAD /h HTTP/1.1\r\nHost: web\r\n\r\n' +
        'GET /last HTTP/1.1\r\nHost: web\r\n\r\n',
      'latin1',
    );
    // Rewrite each head as the inbound proxy would, forwarding bodies verbatim.
    const p = new RequestHeadParser();
    const tracker = new ChunkedTracker();
    const out: string[] = [];
    const methods: string[] = [];
    let pos = 0;
    while (pos < client.length) {
      const end = p.execute(client, pos);
      assert.ok(end > 0, `refused: ${p.error}`);
      const h = p.head!;
      methods.push(h.method);
      IDENTITY_HEADERS.apply(h.headers);
      stripHopByHop(h.headers, h.upgrade);
      setHeader(h.headers, 'x-hostmesh-source', 'api');
      const target = h.target === '//up/../chunked' ? '/chunked' : h.target;
      out.push(serializeRequestHead(h.method, target, h.version, h.headers));
      pos = end;
      if (h.body === 'chunked') {
        const bodyEnd = tracker.execute(client, pos);
        assert.ok(bodyEnd > 0);
        out.push(client.toString('latin1', pos, bodyEnd));
        pos = bodyEnd;
      }
    }

    const sock = net.connect(port, '127.0.0.1');
    await once(sock, 'connect');
    sock.write(out.join(''), 'latin1'); // all three pipelined

    // Read the three responses off the one connection.
    const rp = new ResponseHeadParser();
    const rt = new ChunkedTracker();
    const responses: Array<{ status: number; body: string }> = [];
    let state: 'head' | 'length' | 'chunked' = 'head';
    let remaining = 0;
    let body = '';
    let current: ResponseHead | null = null;
    const done = (): void => {
      responses.push({ status: (current as ResponseHead).status, body });
      body = '';
      state = 'head';
    };
    for await (const data of sock) {
      const chunk = data as Buffer;
      let at = 0;
      while (at < chunk.length) {
        if (state === 'head') {
          rp.requestMethod = methods[responses.length] ?? 'GET';
          const r = rp.execute(chunk, at);
          if (r === NEED_MORE) break;
          assert.notEqual(r, HEAD_ERROR, `response refused: ${rp.error}`);
          current = rp.head!;
          at = r;
          if (current.body === 'length') {
            state = 'length';
            remaining = current.contentLength;
          } else if (current.body === 'chunked') {
            state = 'chunked';
          } else {
            done();
          }
        } else if (state === 'length') {
          const take = Math.min(remaining, chunk.length - at);
          body += chunk.toString('latin1', at, at + take);
          at += take;
          remaining -= take;
          if (remaining === 0) done();
        } else {
          const r = rt.execute(chunk, at);
          assert.notEqual(r, CHUNKED_ERROR);
          const stop = r === CHUNKED_NEED_MORE ? chunk.length : r;
          body += chunk.toString('latin1', at, stop);
          at = stop;
          if (r !== CHUNKED_NEED_MORE) done();
        }
      }
      if (responses.length === 3) break;
    }
    sock.destroy();

    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 200, 200],
    );
    assert.match(responses[0]?.body ?? '', /part one;/);
    assert.ok(responses[0]?.body.endsWith('0\r\n\r\n'));
    assert.equal(responses[1]?.body, ''); // HEAD: no body despite content-length: 5
    assert.equal(responses[2]?.body, 'ok');

    assert.equal(seen.length, 3);
    const [post, head, last] = seen as [Seen, Seen, Seen];
    assert.equal(post.url, '/chunked');
    assert.equal(post.body, 'body');
    assert.equal(post.headers['x-hostmesh-source'], 'api');
    assert.equal(post.headers['x-drop'], undefined);
    assert.equal(post.headers['transfer-encoding'], 'chunked');
    assert.equal(head.method, 'HEAD');
    assert.equal(last.url, '/last');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
