// The HTTP/1.1 connection loop on its own (agent/proxy/http1/connection-loop.ts): a raw client, the
// loop with a minimal side (test/agent/http1-loop-harness.ts) and a scripted raw upstream, on
// loopback. Every check is on bytes a peer sees: what reaches the upstream, what comes back to the
// client, and when either connection is closed.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { LoopProxy, type LoopProxyOptions, type Message, ok, Peer, RawServer, sleep, within } from './http1-loop-harness.js';

const T = { timeout: 10_000 };
const MiB = 1024 * 1024;

/** Writes a `total`-byte body in 64 KiB pieces as fast as the client's socket takes them. */
function upload(c: Peer, total: number): { sent: () => number; writer: Promise<void> } {
  const piece = Buffer.alloc(64 * 1024, 0x62);
  let sent = 0;
  const writer = (async () => {
    while (sent < total) {
      sent += piece.length;
      if (!c.socket.write(piece)) await once(c.socket, 'drain');
    }
  })();
  return { sent: () => sent, writer };
}

/** An upstream running `serve` on each connection, the loop in front of it, and clients to it; all closed after the test. */
async function setup(t: TestContext, serve: (peer: Peer, index: number) => void | Promise<void>, options: LoopProxyOptions = {}) {
  const up = await RawServer.start(serve);
  const proxy = await LoopProxy.start(up.port, options);
  const clients: Peer[] = [];
  t.after(async () => {
    for (const c of clients) c.socket.destroy();
    await proxy.close();
    await up.close();
  });
  const client = async (): Promise<Peer> => {
    const c = await Peer.connect(proxy.port);
    clients.push(c);
    return c;
  };
  return { up, proxy, client };
}

/** Answers each request on the connection with `METHOD target body`. */
async function echo(peer: Peer): Promise<void> {
  for (;;) {
    const req = await peer.request();
    const [method, target] = req.start.split(' ');
    peer.write(ok(`${method} ${target} ${req.body.toString('latin1')}`));
  }
}

const text = (r: Message): string => `${r.status} ${r.body.toString('latin1')}`;

/** Resolves once `cond()` holds; fails after `ms`. Polls, so it never outlives the test. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Resolves once `read()` has stopped changing for `quietMs` (the buffers along the way are full). */
async function stalled(read: () => number, quietMs = 150, maxMs = 5000): Promise<number> {
  const t0 = Date.now();
  let last = -1;
  while (read() !== last) {
    if (Date.now() - t0 > maxMs) throw new Error(`still moving after ${maxMs} ms`);
    last = read();
    await sleep(quietMs);
  }
  return last;
}

test('keep-alive: requests in sequence share the client connection and one upstream connection', T, async (t) => {
  const { up, proxy, client } = await setup(t, echo);
  const c = await client();
  c.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 GET /a ');
  c.write('POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
  assert.equal(text(await c.response()), '200 POST /b hello');
  c.write('POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  assert.equal(text(await c.response()), '200 POST /c abc');
  c.write('GET /d HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 GET /d ');
  assert.equal(up.connections, 1, 'the upstream connection is reused');
  assert.equal(c.ended, false);
  assert.equal(proxy.sessions.size, 1);
  assert.equal(proxy.events.filter((e) => e === 'end').length, 4);
});

test('pipelined requests are answered in order, one at a time upstream, the proxy’s own answers in their place', T, async (t) => {
  let overlapped = false;
  const { up, client } = await setup(t, async (peer) => {
    for (;;) {
      const req = await peer.request();
      const target = req.start.split(' ')[1];
      if (target === '/slow') await sleep(50);
      // A request's bytes arriving before its predecessor is answered would mean the proxy pipelines upstream.
      if (peer.buffered > 0) overlapped = true;
      peer.write(ok(`${target} ${req.body.toString()}`));
    }
  });
  const c = await client();
  c.write(
    'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /deny HTTP/1.1\r\nHost: x\r\n\r\n' +
      'POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc' +
      'GET /last HTTP/1.1\r\nHost: x\r\n\r\n',
  );
  const got: string[] = [];
  for (let i = 0; i < 4; i++) got.push(text(await c.response()));
  assert.deepEqual(got, ['200 /slow ', '403 denied by the test side\n', '200 /body abc', '200 /last ']);

  // The next head arrives in pieces while the one before it is still being answered.
  c.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /spl');
  await sleep(10);
  c.write('it HTTP/1.1\r\nHo');
  await sleep(10);
  c.write('st: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 /slow ');
  assert.equal(text(await c.response()), '200 /split ');
  assert.equal(overlapped, false);
  assert.equal(up.connections, 1);
  await sleep(20);
  assert.equal(c.buffered, 0, 'one response per request');
});

test('request bodies reach the upstream byte for byte: content-length, chunked with extensions and trailers', T, async (t) => {
  const got: Message[] = [];
  const { client } = await setup(t, async (peer) => {
    for (;;) {
      got.push(await peer.request());
      peer.write(ok());
    }
  });
  const c = await client();
  c.write('POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world');
  assert.equal((await c.response()).status, 200);
  const chunked = '5;name=value\r\nhello\r\n6 ; q="a b"\r\n world\r\n0\r\nx-trailer: t\r\nx-other: u\r\n\r\n';
  c.write(`POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
  assert.equal((await c.response()).status, 200);
  // The same body split at awkward places: inside a size line, a data block and a trailer.
  const cuts = [3, chunked.indexOf('hello') + 2, chunked.indexOf('x-trailer') + 4, chunked.length];
  c.write(`POST /split HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunked.slice(0, cuts[0])}`);
  for (let i = 1; i < cuts.length; i++) {
    await sleep(10);
    c.write(chunked.slice(cuts[i - 1], cuts[i]));
  }
  assert.equal((await c.response()).status, 200);
  assert.deepEqual(
    got.map((r) => r.start),
    ['POST /cl HTTP/1.1', 'POST /te HTTP/1.1', 'POST /split HTTP/1.1'],
  );
  assert.equal(got[0]!.rawBody.toString('latin1'), 'hello world');
  assert.equal(got[1]!.headers['transfer-encoding'], 'chunked');
  assert.equal(got[1]!.rawBody.toString('latin1'), chunked);
  assert.equal(got[2]!.rawBody.toString('latin1'), chunked);
});

test('response bodies reach the client byte for byte: chunked with extensions and trailers, content-length, heads in pieces', T, async (t) => {
  const chunked = '4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nx-checksum: 42\r\n\r\n';
  const { up, client } = await setup(t, async (peer) => {
    for (;;) {
      const req = await peer.request();
      const target = req.start.split(' ')[1];
      if (target === '/te') {
        peer.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n${chunked}`);
      } else if (target === '/pieces') {
        peer.write('HTTP/1.1 200 OK\r\ncontent-le');
        await sleep(10);
        peer.write('ngth: 10\r\n\r\n01234');
        await sleep(10);
        peer.write('56789');
      } else {
        peer.write(ok('plain body'));
      }
    }
  });
  const c = await client();
  c.write('GET /te HTTP/1.1\r\nHost: x\r\n\r\n');
  const te = await c.response();
  assert.equal(te.rawBody.toString('latin1'), chunked);
  assert.equal(te.body.toString(), 'abcdefg');
  c.write('GET /pieces HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 0123456789');
  c.write('GET /cl HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 plain body');
  assert.equal(up.connections, 1, 'the framing of each response was found: the connection is reused');
});

test('a client that does not read holds the upstream back: the proxy buffers a bounded amount, then delivers every byte', T, async (t) => {
  // More than the kernel buffers of both legs can take (receive buffers autotune up to tens of MiB).
  const total = 128 * MiB;
  const piece = Buffer.alloc(64 * 1024, 0x61);
  let written = 0;
  const { proxy } = await setup(t, async (peer) => {
    await peer.request();
    peer.write(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`);
    while (written < total) {
      written += piece.length;
      if (!peer.socket.write(piece)) await once(peer.socket, 'drain');
    }
  });
  // A bare socket with no reader: what it is sent stays in the kernel.
  const sock = net.connect(proxy.port, '127.0.0.1');
  t.after(() => sock.destroy());
  await once(sock, 'connect');
  sock.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  const stuck = await stalled(() => written);
  assert.ok(stuck < total, `the upstream wrote all ${total} bytes to a client that reads nothing`);
  const s = proxy.session();
  assert.ok(s.maxClientBuffered <= MiB, `the proxy buffered ${s.maxClientBuffered} bytes for the client`);
  assert.ok((s.upstreamSocket?.readableLength ?? 0) <= MiB, 'nor does it read ahead from the upstream');

  let head = Buffer.alloc(0);
  let body = -1;
  const done = new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      if (body === -1) {
        head = Buffer.concat([head, d]);
        const i = head.indexOf('\r\n\r\n');
        if (i !== -1) body = head.length - i - 4;
      } else {
        body += d.length;
      }
      if (body >= total) resolve();
    });
  });
  await within(done, 8000, 'the whole body');
  await sleep(20);
  assert.equal(body, total);
  assert.ok(s.maxClientBuffered <= MiB, `the proxy buffered ${s.maxClientBuffered} bytes for the client`);
});

test('a client that stops reading its response for its idle time is dropped, and the upstream connection with it', T, async (t) => {
  const total = 64 * MiB;
  const piece = Buffer.alloc(64 * 1024, 0x63);
  let upstream = null as Peer | null;
  let written = 0;
  const { proxy } = await setup(
    t,
    async (peer) => {
      await peer.request();
      upstream = peer;
      peer.write(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`);
      while (written < total && !peer.socket.destroyed) {
        written += piece.length;
        if (!peer.socket.write(piece)) await Promise.race([once(peer.socket, 'drain'), peer.closed]);
      }
    },
    { idleMs: 200 },
  );
  const sock = net.connect(proxy.port, '127.0.0.1');
  t.after(() => sock.destroy());
  const closed = new Promise((resolve) => sock.on('close', resolve));
  sock.on('error', () => {}); // a reset is how it may learn it was dropped
  await once(sock, 'connect');
  sock.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => upstream !== null, 2000, 'the request upstream');
  await within(upstream!.closed, 5000, 'the proxy to close the upstream connection');
  assert.ok(written < total);
  // Then its connection ends (a FIN after what the kernel held, or a reset): short of the body.
  let got = 0;
  sock.on('data', (d: Buffer) => (got += d.length));
  await within(closed, 5000, 'the client connection to close');
  assert.ok(got < total, `${got} of ${total} bytes`);
  assert.equal(proxy.sessions.size, 0);
});

test('an upstream that does not read holds the client back: the proxy buffers a bounded amount, then forwards every byte', T, async (t) => {
  const total = 128 * MiB;
  let release!: () => void;
  const go = new Promise<void>((r) => (release = r));
  let reading = false;
  const { proxy, client } = await setup(t, async (peer) => {
    const h = await peer.head();
    peer.socket.pause();
    await go;
    reading = true;
    peer.socket.resume();
    await peer.skip(Number(h.headers['content-length']));
    peer.write(ok('all of it'));
  });
  const c = await client();
  c.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
  const { sent, writer } = upload(c, total);
  const stuck = await stalled(sent);
  assert.equal(reading, false);
  assert.ok(stuck < total, `the client sent all ${total} bytes to an upstream that reads nothing`);
  const up = proxy.session().upstreamSocket;
  assert.ok(up !== null);
  assert.ok(up.writableLength <= MiB, `the proxy buffered ${up.writableLength} bytes for the upstream`);
  release();
  await within(writer, 8000, 'the client to send it all');
  assert.equal(text(await within(c.response(), 8000, 'the response')), '200 all of it');
});

test('an upstream slower than the client’s idle time to take an upload: the client, held back meanwhile, is not timed out', T, async (t) => {
  const total = 32 * MiB;
  let release!: () => void;
  const go = new Promise<void>((r) => (release = r));
  const { client } = await setup(
    t,
    async (peer) => {
      const h = await peer.head();
      peer.socket.pause();
      await go;
      peer.socket.resume();
      await peer.skip(Number(h.headers['content-length']));
      peer.write(ok('all of it'));
    },
    { idleMs: 200 },
  );
  const c = await client();
  c.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
  const { sent, writer } = upload(c, total);
  await stalled(sent);
  // Held back by the proxy for more than twice its idle time.
  await sleep(500);
  assert.equal(c.buffered, 0, 'no answer before the upstream has taken the body');
  release();
  await within(writer, 8000, 'the client to send it all');
  assert.equal(text(await within(c.response(), 8000, 'the response')), '200 all of it');
});

test('Connection: close from the client: the response says so, the connection closes after it, and what follows is not read', T, async (t) => {
  const { proxy, client } = await setup(t, echo);
  const c = await client();
  c.write('GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n');
  const r = await c.response();
  assert.equal(text(r), '200 GET /a ');
  assert.equal(r.headers.connection, 'close', 'RFC 9112 §9.6');
  assert.equal((await c.closesWithin(2000)).length, 0);
  assert.ok(!proxy.events.includes('request GET /never'));
});

test('Connection: close from the upstream: the client keeps its connection, the next request gets a new upstream one', T, async (t) => {
  const { up, client } = await setup(t, async (peer, i) => {
    await peer.request();
    peer.write(ok(`conn ${i}`, 'connection: close\r\n'));
    peer.socket.end();
  });
  const c = await client();
  c.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\n');
  const r1 = await c.response();
  assert.equal(text(r1), '200 conn 0');
  assert.equal(r1.headers.connection, undefined, 'hop-by-hop: not forwarded');
  c.write('GET /2 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 conn 1');
  assert.equal(up.connections, 2);
  assert.equal(c.ended, false);
});

test('HTTP/1.0: closed after the response unless keep-alive was asked; a body that ends with the upstream’s close ends the connection', T, async (t) => {
  const seen: string[] = [];
  const { client } = await setup(t, async (peer) => {
    for (;;) {
      const req = await peer.request();
      seen.push(`${req.start} ${req.headers.connection ?? ''}`);
      if (req.start.startsWith('GET /until-close')) {
        peer.write('HTTP/1.1 200 OK\r\n\r\nuntil the end');
        peer.socket.end();
        return;
      }
      peer.write(ok('one-oh'));
    }
  });
  const a = await client();
  a.write('GET /plain HTTP/1.0\r\n\r\n');
  const plain = await a.response();
  assert.equal(text(plain), '200 one-oh');
  assert.equal(plain.headers.connection, 'close');
  assert.equal((await a.closesWithin(2000)).length, 0);

  const b = await client();
  b.write('GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  const r = await b.response();
  assert.equal(text(r), '200 one-oh');
  assert.equal(r.headers.connection, 'keep-alive', 'an HTTP/1.0 client is told its connection is kept');
  b.write('GET /until-close HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  const u = await b.response();
  assert.equal(text(u), '200 until the end');
  assert.notEqual(u.headers.connection, 'keep-alive');
  assert.deepEqual(seen, ['GET /plain HTTP/1.0 ', 'GET /ka HTTP/1.0 keep-alive', 'GET /until-close HTTP/1.0 keep-alive']);
});

test('HEAD, 204 and 304 responses end at their head, whatever their Content-Length, and the connection carries on', T, async (t) => {
  const { up, client } = await setup(t, async (peer) => {
    for (;;) {
      const req = await peer.request();
      if (req.start.startsWith('HEAD')) peer.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n');
      else if (req.start.startsWith('GET /204')) peer.write('HTTP/1.1 204 No Content\r\n\r\n');
      else if (req.start.startsWith('GET /304')) peer.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\netag: "v1"\r\n\r\n');
      else peer.write(ok('after'));
    }
  });
  const c = await client();
  c.write('HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n');
  const head = await c.response('HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '5');
  assert.equal((await c.response()).status, 204);
  const nm = await c.response();
  assert.equal(nm.status, 304);
  assert.equal(nm.headers['content-length'], '10');
  assert.equal(text(await c.response()), '200 after');
  await sleep(20);
  assert.equal(c.buffered, 0);
  assert.equal(up.connections, 1);
});

test('Expect: 100-continue: the client is told to go on, then answered; refused, it is answered at once and the connection closed', T, async (t) => {
  const { up, client } = await setup(t, echo);
  const c = await client();
  c.write('POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
  const cont = await c.response();
  assert.equal(cont.status, 100);
  c.write('data');
  assert.equal(text(await c.response()), '200 POST /up data');

  const d = await client();
  d.write('POST /deny HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
  const r = await d.response();
  assert.equal(r.status, 403);
  assert.equal(r.headers.connection, 'close', 'the body it was told not to send would be read as a request');
  assert.equal((await d.closesWithin(2000)).length, 0);
  assert.equal(up.connections, 1);
});

test('an upstream that fails: before its head the client gets a 502 and keeps its connection; mid-body the client connection is closed', T, async (t) => {
  const { proxy, client } = await setup(t, async (peer, i) => {
    for (;;) {
      const req = await peer.request();
      const target = req.start.split(' ')[1] as string;
      if (target === '/fine') {
        peer.write(ok(`conn ${i}`));
        continue;
      }
      if (target === '/cut-cl') peer.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789');
      else if (target === '/cut-chunked') peer.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\n01234');
      if (target !== '/no-answer') await sleep(20);
      peer.socket.destroy();
      return;
    }
  });
  const c = await client();
  c.write('GET /no-answer HTTP/1.1\r\nHost: x\r\n\r\n');
  const r = await c.response();
  assert.equal(r.status, 502);
  assert.equal(r.headers['x-hostmesh-error'], 'UPSTREAM_RESET');
  assert.ok(proxy.events.includes('failure stale=false connected=true'));
  c.write('GET /fine HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 conn 1');

  for (const [target, got] of [
    ['/cut-cl', '0123456789'],
    ['/cut-chunked', '5\r\nhello\r\n10\r\n01234'],
  ]) {
    const d = await client();
    d.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const h = await d.head();
    assert.equal(h.status, 200);
    // Closing is the only way left to tell the client its body is short.
    assert.equal((await d.closesWithin(2000)).toString('latin1'), got);
  }
  await until(() => proxy.sessions.size === 1, 2000, 'the cut sessions to be gone');
});

test('a reused upstream connection that closes before any byte of its answer is reported stale (the side resends)', T, async (t) => {
  const { up, proxy, client } = await setup(t, async (peer, i) => {
    await peer.request();
    if (i === 0) {
      peer.write(ok('first'));
      // The next request finds a connection the upstream is closing.
      await peer.head();
      peer.socket.destroy();
      return;
    }
    peer.write(ok(`conn ${i}`));
  });
  const c = await client();
  c.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 first');
  c.write('GET /2 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 conn 1');
  assert.ok(proxy.events.includes('failure stale=true connected=true'), proxy.events.join(', '));
  assert.equal(up.connections, 2);
});

test('client half-close: whole requests are still answered, then the connection closes; mid-body, the request is dropped', T, async (t) => {
  let upstreamClosed = null as Promise<void> | null;
  const { proxy, client } = await setup(t, async (peer) => {
    for (;;) {
      const h = await peer.head();
      if (h.start.startsWith('POST /cut')) {
        upstreamClosed = peer.closed;
        return;
      }
      await sleep(20);
      peer.write(ok(h.start.split(' ')[1]));
    }
  });
  const c = await client();
  c.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n');
  c.socket.end();
  assert.equal(text(await c.response()), '200 /one');
  assert.equal(text(await c.response()), '200 /two');
  assert.equal((await c.closesWithin(2000)).length, 0);

  const d = await client();
  d.write('POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789');
  await until(() => upstreamClosed !== null, 2000, 'the request upstream');
  d.socket.end();
  assert.equal((await d.closesWithin(2000)).length, 0, 'no answer to a request cut short');
  await within(upstreamClosed!, 2000, 'the upstream connection to close');
  assert.ok(proxy.events.includes('abort'));
});

test('a client that resets while its request is upstream: the upstream connection is closed and the session is gone', T, async (t) => {
  let upstream = null as Peer | null;
  const { proxy, client } = await setup(t, async (peer) => {
    await peer.request();
    upstream = peer; // never answers
  });
  const c = await client();
  c.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => upstream !== null, 2000, 'the request upstream');
  c.socket.resetAndDestroy();
  await within(upstream!.closed, 2000, 'the upstream connection to close');
  await sleep(20);
  assert.equal(proxy.sessions.size, 0);
});

test('request smuggling and framing attacks are refused, the connection closed, and nothing after them is read', T, async (t) => {
  const seen: string[] = [];
  const { proxy, client } = await setup(t, async (peer) => {
    for (;;) {
      const h = await peer.head();
      seen.push(h.start);
      // Bodies are left unread: for the bad-chunk cases the proxy must close this connection.
      if (h.headers['transfer-encoding'] === undefined) peer.write(ok());
    }
  });
  const next = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
  const cases: [name: string, request: string, status: number, code: string][] = [
    ['CL and TE', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'CL_AND_TE'],
    ['TE and CL', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n', 400, 'CL_AND_TE'],
    ['two Content-Lengths', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n', 400, 'DUPLICATE_CONTENT_LENGTH'],
    ['a Content-Length list', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 37\r\n\r\n', 400, 'DUPLICATE_CONTENT_LENGTH'],
    ['a signed Content-Length', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +37\r\n\r\n', 400, 'BAD_CONTENT_LENGTH'],
    ['space before the colon', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length : 37\r\n\r\n', 400, 'BAD_HEADER'],
    ['obs-fold', 'POST /a HTTP/1.1\r\nHost: x\r\nX-Pad: a\r\n Content-Length: 37\r\n\r\n', 400, 'OBS_FOLD'],
    ['bare LF', 'GET /a HTTP/1.1\nHost: x\n\n', 400, 'BARE_LF'],
    ['two Hosts', 'GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', 400, 'BAD_HOST'],
    ['a coding list', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n', 501, 'BAD_TRANSFER_ENCODING'],
    ['TE in HTTP/1.0', 'POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 501, 'BAD_TRANSFER_ENCODING'],
    ['a bad chunk size', 'POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'BAD_CHUNK_SIZE'],
    ['an overflowing chunk size', 'POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n', 400, 'BAD_CHUNK_SIZE'],
    ['a size line ended by LF', 'POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n', 400, 'BAD_CHUNK_SIZE'],
    ['chunk data longer than its size', 'POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n', 400, 'BAD_CHUNK_DATA'],
    ['after a good request', `GET /good HTTP/1.1\r\nHost: x\r\n\r\nPOST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'CL_AND_TE'],
  ];
  for (const [name, request, status, code] of cases) {
    const c = await client();
    c.write(request + next);
    let r = await c.response();
    if (name === 'after a good request') {
      assert.equal(r.status, 200);
      r = await c.response();
    }
    assert.equal(r.status, status, name);
    assert.equal(r.headers['x-hostmesh-error'], code, name);
    assert.equal(r.headers.connection, 'close', name);
    assert.equal((await c.closesWithin(2000)).length, 0, `${name}: nothing after the refusal`);
  }
  // Only requests with a sound head were sent on (the chunked ones, perhaps, if their connection
  // was up before the body failed); none of what followed a refusal.
  assert.ok(seen.includes('GET /good HTTP/1.1'));
  for (const s of seen) assert.ok(s === 'POST /chunks HTTP/1.1' || s === 'GET /good HTTP/1.1', s);
  assert.equal(proxy.events.filter((e) => e === 'abort').length, 4, 'the side was told each bad-chunk exchange was abandoned');
});

test('head limits: over 16 KiB or over 100 fields is refused with 431 and the connection closed, even before the head ends', T, async (t) => {
  const { up, client } = await setup(t, echo);
  const fields = (n: number) => Array.from({ length: n }, (_, i) => `x-f${i}: ${i}\r\n`).join('');

  const a = await client();
  a.write(`GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`);
  const r = await a.response();
  assert.equal(r.status, 431);
  assert.equal(r.headers['x-hostmesh-error'], 'HEAD_TOO_LARGE');
  assert.equal((await a.closesWithin(2000)).length, 0);

  // A head that never ends is refused once it passes the limit, not when (if ever) it ends.
  const b = await client();
  b.write(`GET /endless HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9 * 1024)}`);
  await sleep(10);
  b.write('a'.repeat(9 * 1024));
  assert.equal((await within(b.response(), 2000, 'a refusal')).status, 431);

  const c = await client();
  c.write(`GET /many HTTP/1.1\r\nHost: x\r\n${fields(100)}\r\n`);
  const m = await c.response();
  assert.equal(m.status, 431);
  assert.equal(m.headers['x-hostmesh-error'], 'TOO_MANY_HEADERS');
  assert.equal((await c.closesWithin(2000)).length, 0);

  // Just within both limits: served.
  const d = await client();
  d.write(`GET /within HTTP/1.1\r\nHost: x\r\n${fields(98)}X-Pad: ${'p'.repeat(14 * 1024)}\r\n\r\n`);
  assert.equal(text(await d.response()), '200 GET /within ');
  assert.equal(up.connections, 1);
});

test('timeouts: an idle connection is closed quietly; a stalled head or body gets 408 and a close; a slow upstream is not the client’s fault', T, async (t) => {
  let cutBody = null as Promise<void> | null;
  const { proxy, client } = await setup(
    t,
    async (peer) => {
      for (;;) {
        const h = await peer.head();
        if (h.start.startsWith('POST /stall')) {
          cutBody = peer.closed;
          return;
        }
        if (h.start.startsWith('GET /slow')) await sleep(400);
        peer.write(ok(h.start.split(' ')[1]));
      }
    },
    { idleMs: 150 },
  );
  const a = await client();
  a.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await a.response()), '200 /first');
  const t0 = Date.now();
  assert.equal((await a.closesWithin(2000)).length, 0, 'closed without a word');
  assert.ok(Date.now() - t0 >= 100, 'not before the idle time');
  assert.equal(a.error, null, 'a FIN, not a reset');

  const b = await client();
  b.write('GET /stalled HTTP/1.1\r\nHo');
  const r = await within(b.response(), 2000, 'a 408');
  assert.equal(r.status, 408);
  assert.equal(r.headers['x-hostmesh-error'], 'REQUEST_TIMEOUT');
  assert.equal((await b.closesWithin(2000)).length, 0);

  const c = await client();
  c.write('POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
  const s = await within(c.response(), 2000, 'a 408');
  assert.equal(s.status, 408);
  assert.equal(s.headers.connection, 'close');
  assert.equal((await c.closesWithin(2000)).length, 0);
  await within(cutBody!, 2000, 'the upstream connection to close');
  assert.ok(proxy.events.includes('abort'));

  // The client waits (silent) longer than its idle time for the upstream: it is not timed out.
  const d = await client();
  d.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await d.response()), '200 /slow');
  d.write('GET /again HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await d.response()), '200 /again');
});

test('timeouts: a response body that stalls for the idle time is cut, client and upstream connection both', T, async (t) => {
  let upClosed = null as Promise<void> | null;
  const { client } = await setup(
    t,
    async (peer) => {
      await peer.head();
      peer.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
      upClosed = peer.closed;
    },
    { idleMs: 150 },
  );
  const c = await client();
  const t0 = Date.now();
  c.write('GET /stalls HTTP/1.1\r\nHost: x\r\n\r\n');
  const got = (await c.closesWithin(3000)).toString('latin1');
  assert.ok(Date.now() - t0 >= 100, 'not before the idle time');
  assert.match(got, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n0123456789$/, 'the head and the 10 bytes, then the cut');
  await within(upClosed!, 2000, 'the upstream connection to close');
});

test('CONNECT is refused with 405 and the connection closed; nothing goes upstream', T, async (t) => {
  const { up, client } = await setup(t, echo);
  const c = await client();
  c.write('CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n');
  const r = await c.response();
  assert.equal(r.status, 405);
  assert.equal(r.headers.connection, 'close');
  assert.equal((await c.closesWithin(2000)).length, 0);
  assert.equal(up.connections, 0);
});

test('upstream heads: 1xx hints go to HTTP/1.1 clients before the response; a malformed head or a protocol switch is a 502', T, async (t) => {
  const { client } = await setup(t, async (peer) => {
    for (;;) {
      const req = await peer.request();
      const target = req.start.split(' ')[1];
      if (target === '/hints') peer.write('HTTP/1.1 103 Early Hints\r\nlink: </s.css>; rel=preload\r\n\r\n' + ok('final'));
      else if (target === '/garbage') peer.write('HTTP/1.1 2xx Nope\r\n\r\n');
      else if (target === '/switch') peer.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
      else peer.write(ok());
    }
  });
  const c = await client();
  c.write('GET /hints HTTP/1.1\r\nHost: x\r\n\r\n');
  const hint = await c.response();
  assert.equal(hint.status, 103);
  assert.equal(hint.headers.link, '</s.css>; rel=preload');
  assert.equal(text(await c.response()), '200 final');

  const old = await client();
  old.write('GET /hints HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  assert.equal(text(await old.response()), '200 final', 'HTTP/1.0 has no 1xx');

  for (const target of ['/garbage', '/switch']) {
    c.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal((await c.response()).status, 502, target);
  }
  c.write('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 ok');
});

test('bytes after the end of a response are not forwarded, and that upstream connection is not reused', T, async (t) => {
  const { up, client } = await setup(t, async (peer, i) => {
    for (;;) {
      await peer.request();
      peer.write(i === 0 ? ok('exact') + 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nbad' : ok(`conn ${i}`));
    }
  });
  const c = await client();
  c.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 exact');
  await sleep(20);
  assert.equal(c.buffered, 0);
  c.write('GET /2 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 conn 1');
  assert.equal(up.connections, 2);
});

test('the proxy’s own answer comes before the body; the body is then read and dropped, and the connection serves the next request', T, async (t) => {
  const seen: string[] = [];
  const { client } = await setup(t, async (peer) => {
    for (;;) {
      const req = await peer.request();
      seen.push(req.start);
      peer.write(ok(req.start.split(' ')[1]));
    }
  });
  const c = await client();
  c.write('POST /deny HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n');
  const r = await c.response();
  assert.equal(r.status, 403);
  assert.equal(r.headers.connection, undefined, 'the connection is kept');
  c.write('0123456789GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(text(await c.response()), '200 /next');
  c.write('POST /deny HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /last HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await c.response()).status, 403);
  assert.equal(text(await c.response()), '200 /last');
  assert.deepEqual(seen, ['GET /next HTTP/1.1', 'GET /last HTTP/1.1']);
});
