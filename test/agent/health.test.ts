// Local health checks: thresholds (pure), the HTTP and TCP probes against real sockets, and the
// monitor both end-to-end and on a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { ResolvedCheck, ResolvedService } from '../../shared/host-config.js';
import { HealthMonitor, Thresholds, httpProbe, tcpProbe, type Clock, type ProbeResult } from '../../agent/health/index.js';

// ---------- helpers ----------

async function listenHttp(handler: http.RequestListener, port = 0): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

async function closeHttp(server: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

/** A port that was just free: listen on an ephemeral port, then close it. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function service(name: string, check: Partial<ResolvedCheck> | null, port = 1): ResolvedService {
  return {
    name,
    port,
    host: '127.0.0.1',
    protocol: 'http',
    labels: {},
    check: check && { kind: 'http', path: '/health', expectStatus: null, intervalMs: 1000, timeoutMs: 500, rise: 1, fall: 3, ...check },
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Timers that run only when the test advances time; promise callbacks are flushed between them. */
class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  get pending(): number {
    return this.timers.size;
  }
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      await tick();
      let next: { id: number; at: number; fn: () => void } | null = null;
      for (const [id, tm] of this.timers) if (tm.at <= target && (!next || tm.at < next.at)) next = { id, ...tm };
      if (!next) break;
      this.timers.delete(next.id);
      this.t = next.at;
      next.fn();
    }
    this.t = target;
    await tick();
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const OK: ProbeResult = { ok: true, error: null };
const FAIL: ProbeResult = { ok: false, error: 'boom' };

// ---------- thresholds ----------

test('thresholds: start unknown and unhealthy; rise successes make it healthy', () => {
  const t = new Thresholds(2, 3);
  assert.equal(t.state, 'unknown');
  assert.equal(t.healthy, false);
  assert.equal(t.record(true), false);
  assert.equal(t.state, 'unknown');
  assert.equal(t.record(true), true);
  assert.equal(t.state, 'healthy');
  assert.equal(t.healthy, true);
  assert.equal(t.record(true), false, 'staying healthy is not a change');
  assert.equal(t.consecutive, 3);
});

test('thresholds: from unknown the first failure is unhealthy at once', () => {
  const t = new Thresholds(1, 3);
  assert.equal(t.record(false), true);
  assert.equal(t.state, 'unhealthy');
  assert.equal(t.record(false), false);
  assert.equal(t.consecutive, 2);
});

test('thresholds: healthy needs fall consecutive failures; a success in between resets the count', () => {
  const t = new Thresholds(1, 3);
  t.record(true);
  assert.equal(t.record(false), false);
  assert.equal(t.record(false), false);
  assert.equal(t.record(true), false, 'a success resets the failure streak');
  assert.equal(t.record(false), false);
  assert.equal(t.record(false), false);
  assert.equal(t.healthy, true);
  assert.equal(t.record(false), true);
  assert.equal(t.state, 'unhealthy');
});

test('thresholds: unhealthy needs rise consecutive successes; a failure in between resets the count', () => {
  const t = new Thresholds(3, 1);
  t.record(false);
  t.record(true);
  t.record(true);
  t.record(false);
  assert.equal(t.state, 'unhealthy');
  t.record(true);
  t.record(true);
  assert.equal(t.record(true), true);
  assert.equal(t.state, 'healthy');
  assert.equal(t.record(false), true, 'fall 1: one failure flips it');
});

test('thresholds: rise and fall must be integers >= 1', () => {
  assert.throws(() => new Thresholds(0, 1), RangeError);
  assert.throws(() => new Thresholds(1, 1.5), RangeError);
});

// ---------- http probe ----------

test('http probe: 200 passes; it is a GET of the path on a fresh, non-pooled connection', async () => {
  const seen: { method?: string; url?: string; connection?: string }[] = [];
  const { server, port } = await listenHttp((req, res) => {
    seen.push({ method: req.method, url: req.url, connection: req.headers.connection });
    res.end('ok');
  });
  try {
    const target = { host: '127.0.0.1', port, path: '/health?deep=1', expectStatus: null, timeoutMs: 1000 };
    assert.deepEqual(await httpProbe(target), { ok: true, error: null });
    assert.deepEqual(await httpProbe(target), { ok: true, error: null });
    assert.deepEqual(seen[0], { method: 'GET', url: '/health?deep=1', connection: 'close' });
    assert.equal(seen.length, 2);
  } finally {
    await closeHttp(server);
  }
});

test('http probe: 500 fails, 3xx passes by default, expectStatus 404 passes only on 404', async () => {
  const { server, port } = await listenHttp((req, res) => {
    const status = Number(req.url!.slice(1));
    res.statusCode = status;
    if (status === 302) res.setHeader('location', '/elsewhere');
    res.end();
  });
  try {
    const probe = (path: string, expectStatus: number | null = null) =>
      httpProbe({ host: '127.0.0.1', port, path, expectStatus, timeoutMs: 1000 });
    const failed = await probe('/500');
    assert.equal(failed.ok, false);
    assert.match(failed.error!, /status 500/);
    assert.equal((await probe('/302')).ok, true, 'redirects are not followed, and 3xx passes');
    assert.equal((await probe('/404')).ok, false);
    assert.equal((await probe('/404', 404)).ok, true);
    const wrong = await probe('/200', 404);
    assert.equal(wrong.ok, false, 'with expectStatus, even 200 is a failure');
    assert.match(wrong.error!, /status 200, expected 404/);
  } finally {
    await closeHttp(server);
  }
});

test('http probe: a handler slower than the timeout fails within about the timeout', async () => {
  const { server, port } = await listenHttp(() => {
    /* never answers */
  });
  try {
    const started = Date.now();
    const r = await httpProbe({ host: '127.0.0.1', port, path: '/', expectStatus: null, timeoutMs: 150 });
    const elapsed = Date.now() - started;
    assert.equal(r.ok, false);
    assert.match(r.error!, /timeout after 150ms/);
    assert.ok(elapsed >= 140 && elapsed < 600, `took ${elapsed}ms`);
  } finally {
    await closeHttp(server);
  }
});

test('http probe: headers in time but a body that stalls past the timeout fails', async () => {
  const { server, port } = await listenHttp((_req, res) => {
    res.writeHead(200);
    res.write('partial');
  });
  try {
    const r = await httpProbe({ host: '127.0.0.1', port, path: '/', expectStatus: null, timeoutMs: 150 });
    assert.equal(r.ok, false);
    assert.match(r.error!, /timeout/);
  } finally {
    await closeHttp(server);
  }
});

test('http probe: a huge body is read only up to the cap', async () => {
  let aborted = false;
  const { server, port } = await listenHttp((_req, res) => {
    res.writeHead(200);
    const chunk = Buffer.alloc(16 * 1024, 97);
    let sent = 0;
    const pump = (): void => {
      while (sent < 64 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => (aborted = !res.writableFinished));
    pump();
  });
  try {
    const started = Date.now();
    const r = await httpProbe({ host: '127.0.0.1', port, path: '/', expectStatus: null, timeoutMs: 2000 });
    assert.deepEqual(r, { ok: true, error: null });
    assert.ok(Date.now() - started < 1000);
    for (let i = 0; i < 50 && !aborted; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(aborted, true, 'the probe dropped the connection instead of reading 64 MiB');
  } finally {
    await closeHttp(server);
  }
});

test('http probe: a closed port fails', async () => {
  const port = await closedPort();
  const r = await httpProbe({ host: '127.0.0.1', port, path: '/', expectStatus: null, timeoutMs: 1000 });
  assert.equal(r.ok, false);
  assert.match(r.error!, /ECONNREFUSED/);
});

// ---------- tcp probe ----------

test('tcp probe: a listening port passes and the connection is closed at once', async () => {
  const closed = deferred<void>();
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.on('close', () => closed.resolve());
    socket.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const port = (server.address() as net.AddressInfo).port;
    assert.deepEqual(await tcpProbe({ host: '127.0.0.1', port, timeoutMs: 1000 }), { ok: true, error: null });
    await closed.promise; // would hang (and fail the test) if the probe kept the connection
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('tcp probe: a closed port fails', async () => {
  const port = await closedPort();
  const r = await tcpProbe({ host: '127.0.0.1', port, timeoutMs: 1000 });
  assert.equal(r.ok, false);
  assert.match(r.error!, /ECONNREFUSED/);
});

// ---------- monitor, end to end ----------

test('monitor: real server going down and coming back is reported within about interval x fall', async () => {
  let { server, port } = await listenHttp((req, res) => {
    res.statusCode = req.url === '/health' ? 200 : 404;
    res.end();
  });
  const handler = server.listeners('request')[0] as http.RequestListener;
  const intervalMs = 50;
  const fall = 2;
  const monitor = new HealthMonitor(
    [service('web', { intervalMs, timeoutMs: 40, rise: 1, fall }, port), service('plain', null)],
    { minIntervalMs: 10 },
  );
  const changes: [string, boolean][] = [];
  monitor.on('change', (name, healthy) => changes.push([name, healthy]));
  try {
    assert.equal(monitor.isHealthy('web'), false, 'unknown is reported unhealthy');
    assert.equal(monitor.isHealthy('plain'), true);
    monitor.start();
    const [name, up] = await once(monitor, 'change', { signal: AbortSignal.timeout(1000) });
    assert.deepEqual([name, up], ['web', true]);
    assert.equal(monitor.isHealthy('web'), true);

    await closeHttp(server);
    const downAt = Date.now();
    const [, down] = await once(monitor, 'change', { signal: AbortSignal.timeout(1000) });
    const tookDown = Date.now() - downAt;
    assert.equal(down, false);
    assert.ok(tookDown <= intervalMs * (fall + 1) + 250, `down reported after ${tookDown}ms`);
    assert.equal(monitor.isHealthy('web'), false);
    const snap = monitor.snapshot();
    assert.equal(snap.web?.healthy, false);
    assert.equal(snap.web?.consecutive, fall);
    assert.match(snap.web?.lastError ?? '', /ECONNREFUSED/);
    assert.ok(snap.web?.lastCheckAt && !Number.isNaN(Date.parse(snap.web.lastCheckAt)));
    assert.deepEqual(snap.plain, { healthy: true, lastCheckAt: null, lastError: null, consecutive: 0 });

    ({ server, port } = await listenHttp(handler, port));
    const [, back] = await once(monitor, 'change', { signal: AbortSignal.timeout(1000) });
    assert.equal(back, true);
    assert.equal(monitor.snapshot().web?.lastError, null);
    assert.deepEqual(changes, [['web', true], ['web', false], ['web', true]], 'one event per transition, none for plain');
  } finally {
    monitor.stop();
    if (server.listening) await closeHttp(server);
  }
});

test('monitor: a tcp check reports a dead service at start after a single failure', async () => {
  const port = await closedPort();
  const monitor = new HealthMonitor([service('db', { kind: 'tcp', path: null, intervalMs: 50, timeoutMs: 40, fall: 3 }, port)], {
    minIntervalMs: 10,
  });
  try {
    monitor.start();
    const [name, healthy] = await once(monitor, 'change', { signal: AbortSignal.timeout(1000) });
    assert.deepEqual([name, healthy], ['db', false]);
    assert.equal(monitor.snapshot().db?.consecutive, 1, 'fall 3 does not delay the first verdict');
  } finally {
    monitor.stop();
  }
});

// ---------- monitor, fake clock ----------

test('monitor (fake clock): first probe after a random delay in [0, interval), then every interval', async () => {
  const clock = new FakeClock();
  const randoms = [0.5, 0, 0.999];
  const calls: [string, number][] = [];
  const monitor = new HealthMonitor(
    [service('a', { intervalMs: 1000 }), service('b', { intervalMs: 1000 }), service('c', { intervalMs: 1000 })],
    {
      clock,
      random: () => randoms.shift() ?? 0,
      probe: async (s) => {
        calls.push([s.name, clock.now()]);
        return OK;
      },
    },
  );
  monitor.start();
  await clock.advance(0);
  assert.deepEqual(calls, [['b', 0]]);
  await clock.advance(499);
  assert.deepEqual(calls, [['b', 0]]);
  await clock.advance(1);
  assert.deepEqual(calls.at(-1), ['a', 500]);
  await clock.advance(2000);
  assert.deepEqual(
    calls.filter(([n]) => n === 'a').map(([, t]) => t),
    [500, 1500, 2500],
  );
  assert.deepEqual(
    calls.filter(([n]) => n === 'c').map(([, t]) => t),
    [999, 1999],
  );
  monitor.stop();
  assert.equal(clock.pending, 0, 'stop clears every timer');
});

test('monitor (fake clock): never two probes of one service in flight', async () => {
  const clock = new FakeClock();
  const pending: ((r: ProbeResult) => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const starts: number[] = [];
  const monitor = new HealthMonitor([service('slow', { intervalMs: 100 })], {
    clock,
    random: () => 0,
    probe: () => {
      starts.push(clock.now());
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      const d = deferred<ProbeResult>();
      pending.push((r) => {
        inFlight--;
        d.resolve(r);
      });
      return d.promise;
    },
  });
  monitor.start();
  await clock.advance(1000);
  assert.deepEqual(starts, [0], 'ten intervals pass, but the first probe has not finished');
  pending.shift()!(OK);
  await clock.advance(0);
  assert.deepEqual(starts, [0, 1000], 'it ran past its interval, so the next starts right away');
  await clock.advance(50);
  pending.shift()!(OK);
  await clock.advance(49);
  assert.equal(starts.length, 2);
  await clock.advance(1);
  assert.deepEqual(starts, [0, 1000, 1100], 'otherwise probes are an interval apart, start to start');

  // stop() + start() while a probe is out: the new run waits for it.
  monitor.stop();
  monitor.start();
  await clock.advance(500);
  assert.equal(starts.length, 3);
  pending.shift()!(OK);
  await clock.advance(0);
  assert.equal(starts.length, 4);
  assert.equal(maxInFlight, 1);
  monitor.stop();
  pending.shift()!(OK);
  await clock.advance(0);
  assert.equal(clock.pending, 0, 'a probe finishing after stop() schedules nothing');
});

test('monitor (fake clock): rise/fall transitions, events and snapshot', async () => {
  const clock = new FakeClock();
  const script = [FAIL, OK, OK, FAIL, FAIL, OK, FAIL, FAIL, FAIL, OK];
  const monitor = new HealthMonitor([service('api', { intervalMs: 1000, rise: 2, fall: 3 })], {
    clock,
    random: () => 0,
    probe: async () => script.shift() ?? OK,
  });
  const events: [string, boolean, number][] = [];
  monitor.on('change', (name, healthy) => events.push([name, healthy, clock.now()]));
  assert.deepEqual(monitor.snapshot().api, { healthy: false, lastCheckAt: null, lastError: null, consecutive: 0 });
  monitor.start();
  await clock.advance(0);
  assert.deepEqual(events, [['api', false, 0]], 'first failure from unknown: unhealthy at once');
  assert.deepEqual(monitor.snapshot().api, { healthy: false, lastCheckAt: new Date(0).toISOString(), lastError: 'boom', consecutive: 1 });
  await clock.advance(2000);
  assert.deepEqual(events.at(-1), ['api', true, 2000], 'rise 2');
  await clock.advance(3000); // FAIL, FAIL, OK: not enough
  assert.equal(monitor.isHealthy('api'), true);
  await clock.advance(3000); // FAIL x3
  assert.deepEqual(events.at(-1), ['api', false, 8000], 'fall 3');
  assert.equal(monitor.snapshot().api?.consecutive, 3);
  await clock.advance(1000); // one OK: rise 2 not reached
  assert.equal(monitor.isHealthy('api'), false);
  assert.equal(monitor.snapshot().api?.lastError, null);
  assert.equal(events.length, 3);
  monitor.stop();
});

test('monitor (fake clock): intervals are raised to the minimum, so a typo cannot hot-loop', async () => {
  const clock = new FakeClock();
  let calls = 0;
  const monitor = new HealthMonitor([service('typo', { intervalMs: 1 })], {
    clock,
    random: () => 0.999,
    probe: async () => {
      calls++;
      return OK;
    },
  });
  monitor.start();
  await clock.advance(1000);
  assert.ok(calls >= 9 && calls <= 11, `${calls} probes in 1s at the 100ms minimum`);
  monitor.stop();

  calls = 0;
  const custom = new HealthMonitor([service('typo', { intervalMs: 1 })], {
    clock,
    random: () => 0,
    minIntervalMs: 250,
    probe: async () => {
      calls++;
      return OK;
    },
  });
  custom.start();
  await clock.advance(1000);
  assert.equal(calls, 5); // 0, 250, 500, 750, 1000
  custom.stop();
});

test('monitor (fake clock): a probe that throws or rejects counts as a failure', async () => {
  const clock = new FakeClock();
  let n = 0;
  const monitor = new HealthMonitor([service('x', { intervalMs: 1000, fall: 1 })], {
    clock,
    random: () => 0,
    probe: (() => {
      n++;
      if (n === 1) return Promise.resolve(OK);
      if (n === 2) throw new Error('sync throw');
      return Promise.reject(new Error('rejected'));
    }) as () => Promise<ProbeResult>,
  });
  monitor.start();
  await clock.advance(0);
  assert.equal(monitor.isHealthy('x'), true);
  await clock.advance(1000);
  assert.equal(monitor.isHealthy('x'), false);
  assert.equal(monitor.snapshot().x?.lastError, 'sync throw');
  await clock.advance(1000);
  assert.equal(monitor.snapshot().x?.lastError, 'rejected');
  assert.equal(clock.pending, 1, 'and the checks go on');
  monitor.stop();
});

test('monitor: services without a check are always healthy, never probed, never emit; unknown names are not healthy', async () => {
  const clock = new FakeClock();
  let calls = 0;
  const monitor = new HealthMonitor([service('plain', null)], {
    clock,
    probe: async () => {
      calls++;
      return FAIL;
    },
  });
  let events = 0;
  monitor.on('change', () => events++);
  monitor.start();
  await clock.advance(60_000);
  assert.equal(monitor.isHealthy('plain'), true);
  assert.equal(monitor.isHealthy('nope'), false);
  assert.deepEqual(Object.keys(monitor.snapshot()), ['plain']);
  assert.equal(calls + events + clock.pending, 0);
  monitor.stop();
  assert.throws(() => new HealthMonitor([service('a', null), service('a', {})]), /listed twice/);
});
