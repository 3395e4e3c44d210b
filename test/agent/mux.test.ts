// The tcp multiplexer on its own (agent/proxy/mux/): two MuxSessions over one loopback
// connection (TLS between real agents is covered in test/e2e), "app" connections on the calling
// side and "local instance" connections on the serving side, all real sockets. Checks are on what
// the peers see: bytes, ends, resets, and that one stalled stream holds back nothing else.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { FrameReader, FrameType, MAX_PAYLOAD, MUX_ALPN, MuxProtocolError, STREAM_WINDOW, header, keepable, resetFrame } from '../../agent/proxy/mux/frames.js';
import { MuxChannel, STREAM_REFUSED } from '../../agent/proxy/mux/channel.js';
import { MuxPool } from '../../agent/proxy/mux/pool.js';
import { CHURN_BURST, MAX_STREAMS, MuxSession } from '../../agent/proxy/mux/session.js';
import type { Dialer } from '../../agent/proxy/dialer.js';
import type { TlsMaterial } from '../../agent/proxy/tls-material.js';
import type { Endpoint } from '../../shared/protocol.js';
import { socketPair } from '../helpers/sockets.js';

const T = { timeout: 20_000 };
const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Resolves when the peer of `s` has gone: its end arrived, or the connection closed or failed. */
function gone(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    s.once('end', resolve);
    s.once('close', resolve);
    s.once('error', () => resolve());
  });
}

function collect(s: net.Socket): { data: () => Buffer; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => s.once('end', () => resolve()));
  return { data: () => Buffer.concat(chunks), ended };
}

/**
 * A client session and a server session over one connection. The server side connects each
 * stream to a "local instance" listener, at once as the agent does; `local()` of an opened stream
 * is that listener's end of it (once connected).
 */
async function sessions(t: TestContext, onOpen?: (server: MuxSession, id: number) => boolean, serverIdleMs = 0) {
  const [ca, sa] = await socketPair(t);
  const instance = net.createServer({ allowHalfOpen: true });
  const byPort = new Map<number, net.Socket>();
  instance.on('connection', (s: net.Socket) => byPort.set(s.remotePort!, s));
  instance.listen(0, '127.0.0.1');
  await once(instance, 'listening');
  const instancePort = (instance.address() as net.AddressInfo).port;
  const nearById = new Map<number, net.Socket>();
  const server: MuxSession = new MuxSession(
    sa as unknown as tls.TLSSocket,
    'server',
    {
      onOpen: (id) => {
        if (onOpen && !onOpen(server, id)) return;
        const near = net.connect({ port: instancePort, host: '127.0.0.1', allowHalfOpen: true });
        nearById.set(id, near);
        server.accept(id, near);
      },
    },
    serverIdleMs,
  );
  const client = new MuxSession(ca as unknown as tls.TLSSocket, 'client', {}, 0);
  t.after(() => {
    client.destroy();
    server.destroy();
    for (const s of byPort.values()) s.destroy();
    instance.close();
  });
  const local = (id: number): net.Socket | undefined => {
    const near = nearById.get(id);
    return near?.localPort === undefined ? undefined : byPort.get(near.localPort);
  };
  /** An app connection carried as a new stream: the app's end, and the instance's end once there. */
  const open = async (): Promise<{ app: net.Socket; local: () => net.Socket }> => {
    const [app, near] = await socketPair(t);
    near.pause();
    const stream = client.openStream(near);
    return { app, local: () => local(stream.id)! };
  };
  return { client, server, open, local, wire: ca };
}

test('frames cut at every byte boundary are read back the same', () => {
  const frames = [
    Buffer.concat([header(FrameType.Open, 1, 0)]),
    Buffer.concat([header(FrameType.Data, 1, 5), Buffer.from('hello')]),
    Buffer.concat([header(FrameType.Data, 7, 300), crypto.randomBytes(300)]),
    Buffer.concat([header(FrameType.Fin, 1, 0)]),
  ];
  const wire = Buffer.concat(frames);
  for (let cut = 0; cut <= wire.length; cut++) {
    const got: string[] = [];
    const r = new FrameReader((type, id, p) => got.push(`${type}/${id}/${p.toString('hex')}`));
    r.push(wire.subarray(0, cut));
    r.push(wire.subarray(cut));
    assert.deepEqual(got, frames.map((f) => `${f[0]}/${f.readUInt32BE(1)}/${f.subarray(9).toString('hex')}`), `cut at ${cut}`);
  }
  // One byte at a time.
  let n = 0;
  const r = new FrameReader(() => n++);
  for (const b of wire) r.push(Buffer.from([b]));
  assert.equal(n, frames.length);
});

test('a frame no agent would send is a protocol error', () => {
  const r = () => new FrameReader(() => undefined);
  assert.throws(() => r().push(header(99 as FrameType, 1, 0)), MuxProtocolError);
  assert.throws(() => r().push(header(FrameType.Data, 1, MAX_PAYLOAD + 1)), MuxProtocolError);
});

test('many streams over one connection carry their own bytes both ways, in order', T, async (t) => {
  const { open } = await sessions(t);
  const n = 40;
  const streams = await Promise.all(Array.from({ length: n }, () => open()));
  await until(() => streams.every((s) => s.local() !== undefined), 5000, 'every stream at the instance');
  const payloads = streams.map(() => crypto.randomBytes(20_000 + Math.floor(Math.random() * 200_000)));
  const atLocal = streams.map((s) => collect(s.local()));
  const atApp = streams.map((s) => collect(s.app));
  streams.forEach((s, i) => {
    s.app.end(payloads[i]!);
    s.local().end(Buffer.from(`reply ${i}`));
  });
  await Promise.all(atLocal.map((c) => c.ended));
  await Promise.all(atApp.map((c) => c.ended));
  streams.forEach((_, i) => {
    assert.ok(atLocal[i]!.data().equals(payloads[i]!), `stream ${i} request bytes`);
    assert.equal(atApp[i]!.data().toString(), `reply ${i}`);
  });
});

test('half-close: the app ends its side and still receives the reply', T, async (t) => {
  const { open } = await sessions(t);
  const { app, local } = await open();
  await until(() => local() !== undefined);
  const atLocal = collect(local());
  const atApp = collect(app);
  app.end('question');
  await atLocal.ended;
  assert.equal(atLocal.data().toString(), 'question');
  // The local side is still writable after the app's FIN.
  local().write('answer, ');
  await sleep(50);
  local().end('late');
  await atApp.ended;
  assert.equal(atApp.data().toString(), 'answer, late');
});

test('a stalled reader holds back its own stream only; its bytes are all delivered once it reads', T, async (t) => {
  const { open, server } = await sessions(t);
  const slow = await open();
  const fast = await open();
  await until(() => slow.local() !== undefined && fast.local() !== undefined);
  slow.local().pause();
  const big = crypto.randomBytes(32 * MiB);
  slow.app.end(big);
  // The session moves at most a window (and a frame) past what the slow local reader took: the
  // rest waits in the app's socket, not in the agents.
  await sleep(300);
  const slowStream = [...(server as unknown as { streams: Map<number, { bytesIn: number }> }).streams.values()][0]!;
  const crossed = slowStream.bytesIn;
  // What crossed is what the local socket's kernel buffers took, plus at most a window and a frame.
  assert.ok(crossed < 16 * MiB, `${crossed} bytes crossed while the reader was stalled`);
  await sleep(300);
  assert.ok(slowStream.bytesIn - crossed <= STREAM_WINDOW + MAX_PAYLOAD, 'still moving while the reader is stalled');
  // The other stream on the same session is not held back.
  const atFast = collect(fast.local());
  fast.app.end('not blocked');
  await atFast.ended;
  assert.equal(atFast.data().toString(), 'not blocked');
  // Reading again: every byte arrives, in order.
  const rest = collect(slow.local());
  slow.local().resume();
  await rest.ended;
  assert.ok(rest.data().equals(big));
});

test('a reset on one side closes the other; a refused stream closes the app connection', T, async (t) => {
  let refuse = false;
  const { open } = await sessions(t, (server, id) => {
    if (!refuse) return true;
    server.refuse(id, 'DENIED');
    return false;
  });
  const a = await open();
  await until(() => a.local() !== undefined);
  // The instance resets its connection: the app's connection is torn down (it sees its end).
  const ended = gone(a.app);
  a.local().resetAndDestroy();
  await ended;
  refuse = true;
  const b = await open();
  await gone(b.app);
});

test('goAway: no new streams, the open one finishes, then the session closes', T, async (t) => {
  const { open, client, server } = await sessions(t);
  const s = await open();
  await until(() => s.local() !== undefined);
  server.goAway();
  await until(() => client.goingAway, 2000, 'client to see GoAway');
  assert.equal(client.open, false);
  const atApp = collect(s.app);
  const atLocal = collect(s.local());
  s.app.end('last words');
  await atLocal.ended;
  s.local().end('bye');
  await atApp.ended;
  assert.equal(atApp.data().toString(), 'bye');
  await until(() => client.closed && server.closed, 2000, 'both sessions closed');
});

test('garbage from the peer closes the session and every stream on it', T, async (t) => {
  const { open, client, wire } = await sessions(t);
  const s = await open();
  await until(() => s.local() !== undefined);
  const appClosed = gone(s.app);
  // The server's side of the wire is the session's socket: write straight into the client's.
  (client.socket as unknown as net.Socket).emit('data', Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  await appClosed;
  assert.equal(client.closed, true);
  assert.ok(wire.destroyed);
});

test('the pool shares one session between connections, and falls back to one-to-one with a peer without the multiplexer', T, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hm-mux-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`, '-days', '1', '-subj', '/CN=test'], { stdio: 'ignore' });
  const key = fs.readFileSync(`${dir}/k.pem`);
  const cert = fs.readFileSync(`${dir}/c.pem`);
  const start = async (alpn: string[] | undefined): Promise<{ port: number; conns: () => number }> => {
    let conns = 0;
    const srv = tls.createServer({ key, cert, ...(alpn ? { ALPNProtocols: alpn } : {}) }, (s) => {
      conns++;
      s.on('error', () => undefined);
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    t.after(() => srv.close());
    return { port: (srv.address() as net.AddressInfo).port, conns: () => conns };
  };
  const dialer = {
    dial: (_service: string, ep: Endpoint, _timeout: number, alpn?: string[]) =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ host: ep.address, port: ep.port, rejectUnauthorized: false, ...(alpn ? { ALPNProtocols: alpn } : {}) }, () => resolve(s));
        s.once('error', reject);
      }),
  } as unknown as Dialer;
  const pool = new MuxPool(dialer, { version: 0 } as TlsMaterial);
  t.after(() => pool.close());
  const ep = (port: number): Endpoint => ({ host: `h${port}`, address: '127.0.0.1', port }) as Endpoint;

  const muxPeer = await start([MUX_ALPN]);
  const got = await Promise.all(Array.from({ length: 10 }, () => pool.carrier('svc', ep(muxPeer.port), 2000)));
  assert.ok(got.every((g) => 'session' in g && g.session === (got[0] as { session: MuxSession }).session), 'one shared session');
  await sleep(50);
  assert.equal(muxPeer.conns(), 1);

  const oldPeer = await start(undefined);
  const raw = await Promise.all(Array.from({ length: 3 }, () => pool.carrier('svc', ep(oldPeer.port), 2000)));
  assert.ok(raw.every((g) => 'socket' in g));
  assert.equal(new Set(raw.map((g) => (g as { socket: tls.TLSSocket }).socket)).size, 3, 'each connection its own socket');
  for (const g of raw) (g as { socket: tls.TLSSocket }).socket.destroy();
});

/** A client and a server session with channels (as the HTTP proxy uses them): `pair()` opens one. */
async function channelSessions(t: TestContext) {
  const [ca, sa] = await socketPair(t);
  const accepted: MuxChannel[] = [];
  const server: MuxSession = new MuxSession(sa as unknown as tls.TLSSocket, 'server', { onOpen: (id) => void accepted.push(server.acceptChannel(id)) }, 0);
  const client = new MuxSession(ca as unknown as tls.TLSSocket, 'client', {}, 0);
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  const pair = async (): Promise<[MuxChannel, MuxChannel]> => {
    const before = accepted.length;
    const c = client.openChannel();
    await until(() => accepted.length > before, 2000, 'the channel to be accepted');
    return [c, accepted[before]!];
  };
  return { pair };
}

function drainChannel(ch: MuxChannel): { data: () => Buffer; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  ch.on('data', (c: Buffer) => chunks.push(c));
  return { data: () => Buffer.concat(chunks), ended: new Promise((r) => ch.once('end', () => r())) };
}

test('channel: bytes and strings both ways; what arrives while paused comes after resume, in order, then the end', T, async (t) => {
  const { pair } = await channelSessions(t);
  const [c, s] = await pair();
  const atServer = drainChannel(s);
  assert.equal(c.write('GET / HTTP/1.1\r\nx: \xe9\r\n\r\n', 'latin1'), true);
  await until(() => atServer.data().length > 0);
  assert.equal(atServer.data().toString('latin1'), 'GET / HTTP/1.1\r\nx: \xe9\r\n\r\n');
  const got: string[] = [];
  c.on('data', (b: Buffer) => got.push(b.toString()));
  const ended = new Promise<void>((r) => c.once('end', () => r()));
  c.pause();
  s.write('one ');
  s.write('two ');
  s.end('three');
  await sleep(50);
  assert.deepEqual(got, [], 'nothing delivered while paused');
  c.resume();
  assert.deepEqual(got, [], 'delivered on a later tick, not inside resume()');
  await ended;
  assert.equal(got.join(''), 'one two three');
  const closed = once(c, 'close');
  c.end();
  await closed;
  assert.equal(c.bytesRead, 'one two three'.length);
});

test('channel: write() says false past the window and drain comes once the reader takes the bytes', T, async (t) => {
  const { pair } = await channelSessions(t);
  const [c, s] = await pair();
  s.pause();
  let writes = 0;
  while (c.write(Buffer.alloc(32 * 1024))) writes++;
  assert.ok(writes * 32 * 1024 >= STREAM_WINDOW - 32 * 1024 && writes * 32 * 1024 <= STREAM_WINDOW, `false after ${writes} writes of 32 KiB`);
  assert.equal(c.writableNeedDrain, true);
  let drained = false;
  c.once('drain', () => (drained = true));
  await sleep(100);
  assert.equal(drained, false, 'no drain while the reader is paused');
  let received = 0;
  s.on('data', (b: Buffer) => (received += b.length));
  s.resume();
  await until(() => drained, 2000, 'drain');
  assert.equal(received, (writes + 1) * 32 * 1024);
});

test('channel: a destroy on one side is a reset (ECONNRESET, close) on the other; an idle timeout fires', T, async (t) => {
  const { pair } = await channelSessions(t);
  const [c, s] = await pair();
  const err = once(s, 'error');
  const closed = new Promise((r) => s.once('close', r));
  c.destroy();
  assert.equal(((await err)[0] as NodeJS.ErrnoException).code, 'ECONNRESET');
  await closed;
  const [c2] = await pair();
  c2.setTimeout(50);
  const t0 = Date.now();
  await once(c2, 'timeout');
  assert.ok(Date.now() - t0 >= 45);
});

test('channel: one write far past the window waits in the channel instead of overrunning the peer', T, async (t) => {
  const { pair } = await channelSessions(t);
  const [c, s] = await pair();
  s.pause();
  const big = crypto.randomBytes(3 * STREAM_WINDOW + 12_345);
  assert.equal(c.write(big), false);
  c.end();
  await sleep(100);
  const atServer = drainChannel(s);
  s.resume();
  await atServer.ended;
  assert.ok(atServer.data().equals(big), 'every byte, in order, then the end');
});

test('channel: a stream the other agent refuses at open fails with HM_ERR_STREAM_REFUSED (nothing was processed)', T, async (t) => {
  const [ca, sa] = await socketPair(t);
  const server: MuxSession = new MuxSession(sa as unknown as tls.TLSSocket, 'server', { onOpen: (id) => server.refuse(id, 'GOING_AWAY') }, 0);
  const client = new MuxSession(ca as unknown as tls.TLSSocket, 'client', {}, 0);
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  const ch = client.openChannel();
  const [err] = (await once(ch, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, STREAM_REFUSED);
});

test('a small payload cut from a large read is copied before it is held; a whole read is not', () => {
  const read = Buffer.alloc(16 * 1024);
  const small = read.subarray(100, 101);
  const kept = keepable(small);
  assert.notEqual(kept.buffer, read.buffer);
  assert.equal(kept.length, 1);
  const whole = Buffer.allocUnsafeSlow(16 * 1024);
  assert.equal(keepable(whole.subarray(0, 15 * 1024)).buffer, whole.buffer);
});

test('a tcp stream refused at open hands the app connection back with what it sent, and goes on elsewhere', T, async (t) => {
  const refusing = await sessions(t, (server, id) => {
    server.refuse(id, 'GOING_AWAY');
    return false;
  });
  const taking = await sessions(t);
  const [app, near] = await socketPair(t);
  near.pause();
  const got = new Promise<{ sent: Buffer[]; ended: boolean }>((resolve) => refusing.client.openStream(near, (sent, ended) => resolve({ sent, ended })));
  app.end('hello, are you there?');
  const back = await got;
  assert.equal(Buffer.concat(back.sent).toString(), 'hello, are you there?');
  assert.equal(back.ended, true);
  assert.equal(near.destroyed, false, 'the app connection is intact');
  const stream = taking.client.openStream(near, () => assert.fail('refused twice'), back);
  await until(() => taking.local(stream.id) !== undefined, 2000, 'the stream at the second instance');
  const atLocal = collect(taking.local(stream.id)!);
  const atApp = collect(app);
  await atLocal.ended;
  assert.equal(atLocal.data().toString(), 'hello, are you there?');
  taking.local(stream.id)!.end('yes');
  await atApp.ended;
  assert.equal(atApp.data().toString(), 'yes');
});

/**
 * A serving session driven by hand-made frames, as a misbehaving calling agent would send them:
 * every stream it takes is connected to a real local instance, and the instance counts connections.
 */
async function rawCaller(t: TestContext, o: { greet?: boolean } = {}) {
  const [ca, sa] = await socketPair(t);
  // greet: the instance speaks first (as SMTP or MySQL do), so every stream is answered at once.
  const instance = net.createServer((s) => {
    s.on('error', () => undefined).resume();
    if (o.greet) s.write('hello\n');
  });
  let connections = 0;
  instance.on('connection', () => connections++);
  instance.listen(0, '127.0.0.1');
  await once(instance, 'listening');
  const port = (instance.address() as net.AddressInfo).port;
  let churned = 0;
  const server: MuxSession = new MuxSession(
    sa as unknown as tls.TLSSocket,
    'server',
    {
      onOpen: (id) => void server.accept(id, net.connect({ port, host: '127.0.0.1' }).on('error', () => undefined)),
      onChurn: () => churned++,
    },
    0,
  );
  const frames: { type: number; id: number; payload: string }[] = [];
  const reader = new FrameReader((type, id, p) => frames.push({ type, id, payload: p.toString('latin1') }));
  ca.on('data', (c: Buffer) => reader.push(c));
  ca.on('error', () => undefined);
  t.after(() => {
    server.destroy();
    instance.close();
  });
  let nextId = 1;
  /** `n` streams opened and at once reset, in one write. */
  const openAndReset = (n: number): void => {
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++, nextId++) out.push(header(FrameType.Open, nextId, 0), resetFrame(nextId, 'CANCEL'));
    ca.write(Buffer.concat(out));
  };
  const openOnly = (n: number): void => {
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++, nextId++) out.push(header(FrameType.Open, nextId, 0));
    ca.write(Buffer.concat(out));
  };
  let resetUpTo = 1;
  /** Every stream opened so far and not reset yet is reset now. */
  const resetAll = (): void => {
    const out: Buffer[] = [];
    for (; resetUpTo < nextId; resetUpTo++) out.push(resetFrame(resetUpTo, 'CANCEL'));
    ca.write(Buffer.concat(out));
  };
  return { server, wire: ca, frames, openAndReset, openOnly, resetAll, connections: () => connections, churned: () => churned };
}

test('rapid reset: streams opened and reset within the budget are served; past it the session gets GoAway and takes none', T, async (t) => {
  const within = await rawCaller(t);
  within.openAndReset(CHURN_BURST - 100);
  await until(() => within.frames.filter((f) => f.type === FrameType.Accepted).length === CHURN_BURST - 100, 5000, 'every stream accepted');
  await sleep(50);
  assert.equal(within.server.goingAway, false);
  assert.equal(within.churned(), 0);
  assert.ok(!within.frames.some((f) => f.type === FrameType.GoAway));

  const past = await rawCaller(t);
  past.openAndReset(CHURN_BURST + 200);
  await until(() => past.frames.some((f) => f.type === FrameType.GoAway), 5000, 'GoAway');
  assert.equal(past.churned(), 1);
  const accepted = past.frames.filter((f) => f.type === FrameType.Accepted).length;
  // The budget refills at CHURN_PER_SECOND: a few more than the burst may pass while the write is read.
  assert.ok(accepted > CHURN_BURST - 5 && accepted < CHURN_BURST + 50, `accepted ${accepted}`);
  const goAwayAt = past.frames.findIndex((f) => f.type === FrameType.GoAway);
  const after = past.frames.slice(goAwayAt + 1);
  assert.ok(after.length > 0 && after.every((f) => f.type === FrameType.Reset && f.payload === 'GOING_AWAY'), 'every later open is refused as going away');
  // A stream reset in the same read as its Open may be gone before its connection is made: at most one each.
  await sleep(200);
  assert.ok(past.connections() <= accepted, `no local connection for a refused stream (${past.connections()} for ${accepted} accepted)`);
});

test('rapid reset: streams reset after they were answered do not count, however many', T, async (t) => {
  const c = await rawCaller(t, { greet: true });
  // Three rounds, so that no more than 400 local connections are open at once.
  const answered = (): number => new Set(c.frames.filter((f) => f.type === FrameType.Data).map((f) => f.id)).size;
  for (let round = 1; round <= 3; round++) {
    c.openOnly(400);
    await until(() => answered() === round * 400, 10_000, `round ${round}: every stream answered`);
    c.resetAll();
    await until(() => c.server.streamCount === 0, 5000, `round ${round}: every stream gone on the serving side`);
  }
  assert.ok(3 * 400 > CHURN_BURST);
  assert.equal(c.churned(), 0);
  assert.equal(c.server.goingAway, false);
});

test('rapid reset: a calling agent that keeps opening streams after GoAway is cut off', T, async (t) => {
  const c = await rawCaller(t);
  // One stream stays open, so the session lives on after GoAway until it ends.
  c.openOnly(1);
  await until(() => c.frames.some((f) => f.type === FrameType.Accepted), 2000, 'the first stream');
  c.server.goAway();
  const cut = gone(c.wire);
  c.openOnly(MAX_STREAMS);
  await until(() => c.frames.filter((f) => f.type === FrameType.Reset).length === MAX_STREAMS, 5000, 'the opens already on the way refused');
  assert.equal(c.server.closed, false);
  c.openOnly(1);
  await cut;
  assert.equal(c.server.closed, true);
  assert.equal(c.connections(), 1, 'only the stream opened before GoAway reached the instance');
});

test('an idle session goes away with GoAway before it closes', T, async (t) => {
  const { client, server } = await sessions(t, undefined, 50);
  await until(() => client.goingAway, 2000, 'the client to see GoAway');
  await until(() => server.closed && client.closed, 2000, 'both closed');
});

test('a stream opened as the serving agent goes away (with nothing open, it closes at once) is handed back, not reset', T, async (t) => {
  const { client, server } = await sessions(t);
  const [app, near] = await socketPair(t);
  near.pause();
  // The server goes away with no stream open, so it closes at once: the Open below crosses its GoAway.
  server.goAway();
  let appReset = false;
  app.on('error', () => (appReset = true));
  const got = new Promise<{ sent: Buffer[]; ended: boolean }>((resolve) => client.openStream(near, (sent, ended) => resolve({ sent, ended })));
  app.write('first bytes');
  const back = await got;
  assert.equal(Buffer.concat(back.sent).toString(), 'first bytes');
  assert.equal(back.ended, false);
  assert.equal(near.destroyed, false, 'the app connection is intact, to go elsewhere');
  assert.equal(appReset, false);
  assert.equal(client.closed, true);
});

test('a stream the serving agent accepted is reset, not handed back, when the session dies after its GoAway', T, async (t) => {
  const { client, server, open } = await sessions(t);
  const s = await open();
  await until(() => s.local() !== undefined);
  s.local().on('error', () => undefined);
  server.goAway();
  await until(() => client.goingAway, 2000, 'client to see GoAway');
  const appGone = new Promise<string>((resolve) => {
    s.app.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    s.app.once('end', () => resolve('end'));
  });
  server.destroy();
  assert.equal(await appGone, 'ECONNRESET');
});
