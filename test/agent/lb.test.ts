// Load balancing units on a fake clock and a seeded random source: round robin, least request,
// peak EWMA and p2c over it, weighted subsets, the eligible set, and the factory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createBalancer,
  EligibleSet,
  endpointHealthy,
  endpointKey,
  endpointLabels,
  LeastRequest,
  matchesSubset,
  CoarseClock,
  P2cEwma,
  PeakEwma,
  randomFrom,
  RoundRobin,
  seededRandom,
  WeightedSubsets,
  type Balancer,
  type EndpointLike,
} from '../../agent/lb/index.js';
import { OutlierDetector } from '../../agent/resilience/index.js';

// ---------- helpers ----------

interface Ep extends EndpointLike {
  readonly host: string;
  healthy: boolean;
  readonly labels: Record<string, string>;
}

function ep(host: string, labels: Record<string, string> = {}, healthy = true): Ep {
  return { host, labels, healthy };
}

class FakeClock {
  t = 0;
  now(): number {
    return this.t;
  }
}

function tally<E extends { host: string }>(picks: (E | null)[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of picks) {
    assert.ok(p, 'pick returned null');
    m.set(p.host, (m.get(p.host) ?? 0) + 1);
  }
  return m;
}

function pickMany<E>(b: { pick(l: readonly E[]): E | null }, list: readonly E[], n: number): (E | null)[] {
  const out: (E | null)[] = [];
  for (let i = 0; i < n; i++) out.push(b.pick(list));
  return out;
}

/**
 * A discrete-event simulation: a request every `everyMs`, latency from `latencyOf`; completions are
 * reported at their time. Returns, per key, the picks made in [from, to).
 */
function simulate(
  b: Balancer<Ep>,
  clock: FakeClock,
  eps: readonly Ep[],
  opts: { untilMs: number; everyMs: number; latencyOf: (key: string, t: number) => number; windows: [number, number][] },
): Map<string, number>[] {
  const queue: { t: number; key: string; latency: number }[] = [];
  const counts = opts.windows.map(() => new Map<string, number>());
  for (let t = 0; t < opts.untilMs; t += opts.everyMs) {
    queue.sort((x, y) => x.t - y.t);
    while (queue.length > 0 && queue[0]!.t <= t) {
      const done = queue.shift()!;
      clock.t = done.t;
      b.onFinish(done.key, done.latency, true);
    }
    clock.t = t;
    const e = b.pick(eps);
    assert.ok(e);
    b.onStart(e.host);
    const latency = opts.latencyOf(e.host, t);
    queue.push({ t: t + latency, key: e.host, latency });
    opts.windows.forEach(([from, to], i) => {
      if (t >= from && t < to) counts[i]!.set(e.host, (counts[i]!.get(e.host) ?? 0) + 1);
    });
  }
  return counts;
}

function share(m: Map<string, number>, key: string): number {
  let total = 0;
  for (const v of m.values()) total += v;
  return (m.get(key) ?? 0) / total;
}

// ---------- round robin ----------

test('round robin: every endpoint gets exactly its turn', () => {
  const eps = [ep('a'), ep('b'), ep('c'), ep('d')];
  const rr = new RoundRobin<Ep>(seededRandom(1));
  const counts = tally(pickMany(rr, eps, 4000));
  assert.deepEqual([...counts.values()], [1000, 1000, 1000, 1000]);
  // In order: four consecutive picks cover the four endpoints.
  assert.equal(new Set(pickMany(rr, eps, 4).map((e) => e!.host)).size, 4);
});

test('round robin: a cursor per candidate list, so alternating subsets stay fair', () => {
  const v1 = [ep('a'), ep('b')];
  const v2 = [ep('c'), ep('d')];
  const rr = new RoundRobin<Ep>(seededRandom(2));
  const picks: (Ep | null)[] = [];
  for (let i = 0; i < 1000; i++) picks.push(rr.pick(v1), rr.pick(v2));
  assert.deepEqual([...tally(picks).entries()].sort(), [['a', 500], ['b', 500], ['c', 500], ['d', 500]]);
});

test('round robin: empty list gives null, one endpoint is always it, a new list is fair at once', () => {
  const rr = new RoundRobin<Ep>(seededRandom(3));
  assert.equal(rr.pick([]), null);
  const only = [ep('x')];
  assert.equal(rr.pick(only), only[0]);
  const three = [ep('a'), ep('b'), ep('c')];
  pickMany(rr, three, 7);
  const next = [three[0]!, three[2]!]; // b removed: a new eligible array
  assert.deepEqual([...tally(pickMany(rr, next, 100)).values()], [50, 50]);
});

// ---------- least request ----------

test('least request: idle endpoints are preferred over busy ones', () => {
  const eps = [ep('a'), ep('b'), ep('c')];
  const lr = new LeastRequest<Ep>(endpointKey, seededRandom(4));
  lr.setEndpoints(eps);
  lr.onStart('a');
  lr.onStart('a');
  lr.onStart('b');
  for (let i = 0; i < 50; i++) assert.equal(lr.pick(eps)?.host, 'c');
  lr.onStart('c');
  lr.onStart('c');
  // b now has the fewest (1).
  for (let i = 0; i < 50; i++) assert.equal(lr.pick(eps)?.host, 'b');
  lr.onFinish('a', 5, true);
  lr.onFinish('a', 5, true);
  assert.equal(lr.inflightOf('a'), 0);
  assert.equal(lr.pick(eps)?.host, 'a');
});

test('least request: ties are broken uniformly at random', () => {
  const eps = [ep('a'), ep('b'), ep('c'), ep('d')];
  const lr = new LeastRequest<Ep>(endpointKey, seededRandom(5));
  lr.setEndpoints(eps);
  lr.onStart('d');
  const counts = tally(pickMany(lr, eps, 3000));
  assert.equal(counts.get('d'), undefined);
  for (const k of ['a', 'b', 'c']) {
    const n = counts.get(k) ?? 0;
    assert.ok(n > 900 && n < 1100, `${k} got ${n} of 3000`);
  }
});

test('least request: in-flight counts survive endpoint-set updates; removed keys are forgotten', () => {
  const lr = new LeastRequest<Ep>(endpointKey, seededRandom(6));
  lr.setEndpoints([ep('a'), ep('b')]);
  lr.onStart('a');
  lr.setEndpoints([ep('a'), ep('b'), ep('c')]);
  assert.equal(lr.inflightOf('a'), 1);
  lr.setEndpoints([ep('b')]);
  assert.equal(lr.inflightOf('a'), 0);
  lr.onFinish('a', 1, true); // late completion of a removed endpoint: ignored, never negative
  assert.equal(lr.inflightOf('a'), 0);
});

// ---------- peak EWMA ----------

test('peak EWMA: a slow sample raises the estimate at once; it decays back over ~tau', () => {
  const e = new PeakEwma(10_000, 30, 0);
  assert.equal(e.sampled, false);
  // Converge on 5 ms with a sample every 10 ms for 60 s.
  let t = 0;
  for (; t < 60_000; t += 10) e.observe(5, t);
  assert.ok(Math.abs(e.value(t) - 5) < 0.1, `estimate ${e.value(t)}`);
  e.observe(200, t);
  assert.equal(e.value(t), 200, 'peak: jumps to the slow sample');
  // Back to fast answers: after one tau, about 37 % of the excess remains; after 5 tau, < 1 %.
  const start = t;
  for (; t < start + 10_000; t += 10) e.observe(5, t);
  const afterTau = e.value(t);
  assert.ok(afterTau > 60 && afterTau < 90, `after one tau ${afterTau}`);
  for (; t < start + 50_000; t += 10) e.observe(5, t);
  assert.ok(e.value(t) < 7, `after 5 tau ${e.value(t)}`);
});

test('peak EWMA: reading does not mutate; without samples the value fades toward 0', () => {
  const e = new PeakEwma(10_000, 30, 0);
  e.observe(100, 0);
  for (let i = 0; i < 1000; i++) e.value(5);
  assert.equal(e.value(0), 100);
  assert.ok(Math.abs(e.value(10_000) - 100 / Math.E) < 1e-9);
  // A sample long after replaces the faded guess with a measurement.
  e.observe(4, 60_000);
  assert.ok(e.value(60_000) < 5, `${e.value(60_000)}`);
});

// ---------- p2c EWMA ----------

test('p2c-ewma: traffic leaves a slow endpoint, and comes back after it speeds up', () => {
  const clock = new FakeClock();
  const eps = [ep('a'), ep('b'), ep('c')];
  const b = new P2cEwma<Ep>(endpointKey, clock, seededRandom(7));
  b.setEndpoints(eps);
  const jitter = seededRandom(8);
  const [slowPhase, recovered] = simulate(b, clock, eps, {
    untilMs: 120_000,
    everyMs: 2, // 500 requests/s
    // c answers in 100 ms for the first 30 s, then like the others in 5 ms (±20 %).
    latencyOf: (key, t) => (key === 'c' && t < 30_000 ? 100 : 5) * (0.8 + 0.4 * (jitter.below(1_000_000) / 1_000_000)),
    windows: [
      [10_000, 30_000],
      [90_000, 120_000],
    ],
  });
  const slowShare = share(slowPhase!, 'c');
  assert.ok(slowShare < 0.03, `slow endpoint got ${(slowShare * 100).toFixed(1)} % while slow`);
  const backShare = share(recovered!, 'c');
  assert.ok(backShare > 0.25, `recovered endpoint got ${(backShare * 100).toFixed(1)} %`);
  for (const k of ['a', 'b']) assert.ok(share(recovered!, k) > 0.25, `${k} ${share(recovered!, k)}`);
});

test('p2c-ewma: cost is latency × (in flight + 1); an unanswered endpoint is not piled on', () => {
  const clock = new FakeClock();
  const b = new P2cEwma<Ep>(endpointKey, clock, seededRandom(9));
  const a = ep('a');
  const n = ep('new');
  b.setEndpoints([a]);
  b.onStart('a');
  b.onFinish('a', 10, true);
  assert.equal(b.costOf('a', 0), 10);
  b.onStart('a');
  assert.equal(b.costOf('a', 0), 20);
  // A new endpoint starts at the default 30 ms guess …
  b.setEndpoints([a, n]);
  assert.equal(b.costOf('new', 0), 30);
  // … and with a request in flight and no answer yet it costs the penalty.
  b.onStart('new');
  assert.ok(b.costOf('new', 0) >= 1_000_000);
  for (let i = 0; i < 50; i++) assert.equal(b.pick([a, n]), a);
  b.onFinish('new', 2, true);
  assert.ok(b.costOf('new', 0) <= 2 + 1e-9);
  assert.equal(b.pick([a, n]), n);
});

test('p2c-ewma: a fast failure never makes an endpoint look faster', () => {
  const clock = new FakeClock();
  const b = new P2cEwma<Ep>(endpointKey, clock, seededRandom(10));
  b.setEndpoints([ep('a')]);
  b.onStart('a');
  b.onFinish('a', 50, true);
  clock.t = 100;
  const before = b.estimateOf('a', 100)!;
  for (let i = 0; i < 20; i++) {
    b.onStart('a');
    clock.t += 50;
    b.onFinish('a', 1, false);
  }
  assert.ok(b.estimateOf('a', clock.t)! >= before * Math.exp(-1000 / 10_000) - 1e-9);
});

test('p2c-ewma: picks two distinct endpoints (never the same twice in one draw)', () => {
  const clock = new FakeClock();
  const b = new P2cEwma<Ep>(endpointKey, clock, seededRandom(11));
  const eps = [ep('a'), ep('b')];
  b.setEndpoints(eps);
  // b is slower: with two endpoints both are always compared, so a always wins.
  b.onStart('b');
  b.onFinish('b', 100, true);
  b.onStart('a');
  b.onFinish('a', 1, true);
  for (let i = 0; i < 200; i++) assert.equal(b.pick(eps)?.host, 'a');
});

// ---------- weighted subsets ----------

test('weighted subsets: a 90/10 split holds within ±3 % over 2000 picks', () => {
  const eps = [ep('a1', { version: 'v1' }), ep('a2', { version: 'v1' }), ep('b1', { version: 'v2', zone: 'z' })];
  for (const seed of [1, 2, 3, 42]) {
    const ws = new WeightedSubsets<Ep>(
      [
        { subset: { version: 'v1' }, weight: 90 },
        { subset: { version: 'v2' }, weight: 10 },
      ],
      endpointLabels,
      seededRandom(seed),
    );
    let v2 = 0;
    for (let i = 0; i < 2000; i++) {
      const list = ws.select(eps);
      assert.ok(list && list.length > 0);
      if (ws.chosen === 1) {
        v2++;
        assert.deepEqual(list.map((e) => e.host), ['b1']);
      } else {
        assert.deepEqual(list.map((e) => e.host), ['a1', 'a2']);
      }
    }
    const pct = (v2 / 2000) * 100;
    assert.ok(Math.abs(pct - 10) <= 3, `seed ${seed}: v2 got ${pct} %`);
  }
});

test('weighted subsets: an empty subset falls back to the others by weight; weight 0 is never used', () => {
  const v1 = ep('a', { version: 'v1' });
  const v2 = ep('b', { version: 'v2' });
  const v3 = ep('c', { version: 'v3' });
  const ws = new WeightedSubsets<Ep>(
    [
      { subset: { version: 'v1' }, weight: 60 },
      { subset: { version: 'v2' }, weight: 30 },
      { subset: { version: 'v3' }, weight: 10 },
      { subset: { version: 'v4' }, weight: 0 },
    ],
    endpointLabels,
    seededRandom(12),
  );
  // v1 has no eligible endpoint: its 60 % is shared 3:1 between v2 and v3.
  const eligible = [v2, v3];
  let toV2 = 0;
  for (let i = 0; i < 4000; i++) {
    const list = ws.select(eligible)!;
    if (list[0] === v2) toV2++;
  }
  assert.ok(Math.abs(toV2 / 4000 - 0.75) < 0.03, `v2 got ${toV2 / 4000}`);
  // Only the weight-0 subset has endpoints: nothing to choose.
  const onlyV4 = [ep('d', { version: 'v4' })];
  assert.equal(ws.select(onlyV4), null);
  assert.equal(ws.chosen, -1);
  assert.equal(ws.select([]), null);
  // All there again: back to 60/30/10, and v1 alone gets no random draw when it is the only one.
  assert.deepEqual(ws.select([v1])!.map((e) => e.host), ['a']);
});

test('weighted subsets: candidate lists are stable arrays until the eligible set changes', () => {
  const eps = [ep('a', { version: 'v1' }), ep('b', { version: 'v2' })];
  const ws = new WeightedSubsets<Ep>([{ subset: { version: 'v1' }, weight: 100 }], endpointLabels, seededRandom(13));
  const first = ws.select(eps);
  assert.equal(ws.select(eps), first);
  // Same members for the subset in a new eligible array: the list is kept (round-robin cursor too).
  assert.equal(ws.select([eps[0]!]), first);
  // No subset: the eligible array itself.
  const all = new WeightedSubsets<Ep>([{ weight: 100 }], endpointLabels, seededRandom(14));
  assert.equal(all.select(eps), eps);
});

test('matchesSubset: labels must contain the subset', () => {
  assert.equal(matchesSubset({ version: 'v1', zone: 'a' }, { version: 'v1' }), true);
  assert.equal(matchesSubset({ version: 'v1' }, { version: 'v1', zone: 'a' }), false);
  assert.equal(matchesSubset({ version: 'v2' }, { version: 'v1' }), false);
  assert.equal(matchesSubset({}, undefined), true);
  assert.equal(matchesSubset({}, {}), true);
  assert.equal(matchesSubset({}, { toString: 'x' }), false);
});

// ---------- eligible set ----------

test('eligible set: only healthy, non-ejected endpoints; rebuilt on change only; re-admission on time', () => {
  const a = ep('a');
  const b = ep('b');
  const c = ep('c', {}, false);
  const outlier = new OutlierDetector({ consecutiveErrors: 2, baseEjectionMs: 30_000, maxEjectionPercent: 50 });
  outlier.setEndpoints(['a', 'b', 'c']);
  const set = new EligibleSet<Ep>({ keyOf: endpointKey, isHealthy: endpointHealthy }, outlier);
  set.setEndpoints([a, b, c]);
  const first = set.current(0);
  assert.deepEqual(first.map((e) => e.host), ['a', 'b']);
  assert.equal(set.current(1), first, 'same array while nothing changed');

  outlier.onFailure('b', 100);
  assert.equal(set.current(100), first);
  assert.equal(outlier.onFailure('b', 200), true);
  const ejected = set.current(200);
  assert.deepEqual(ejected.map((e) => e.host), ['a']);
  assert.equal(set.current(30_199), ejected, 'still ejected just before its end');
  assert.deepEqual(set.current(30_200).map((e) => e.host), ['a', 'b'], 're-admitted when the ejection ends');

  c.healthy = true;
  set.invalidate();
  assert.deepEqual(set.current(30_300).map((e) => e.host), ['a', 'b', 'c']);
  set.setEndpoints([a]);
  assert.deepEqual(set.current(30_400).map((e) => e.host), ['a']);
});

test('wiring: a failing endpoint is taken out of rotation and the others share its traffic', () => {
  const clock = new FakeClock();
  const eps = [ep('a'), ep('b'), ep('c')];
  const outlier = new OutlierDetector();
  outlier.setEndpoints(eps.map(endpointKey));
  const set = new EligibleSet<Ep>({ keyOf: endpointKey, isHealthy: endpointHealthy }, outlier);
  set.setEndpoints(eps);
  const balancer = createBalancer<Ep>('round-robin', { clock, random: seededRandom(15) });
  let failures = 0;
  const counts = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    clock.t = i * 10;
    const e = balancer.pick(set.current(clock.t))!;
    counts.set(e.host, (counts.get(e.host) ?? 0) + 1);
    if (e.host === 'c') {
      failures++;
      outlier.onFailure('c', clock.t);
    } else {
      outlier.onSuccess(e.host);
    }
  }
  assert.equal(failures, 5, 'ejected after 5 consecutive failures, then never picked in its 30 s');
  assert.equal((counts.get('a') ?? 0) + (counts.get('b') ?? 0), 295);
});

// ---------- factory ----------

test('createBalancer: each kind, default key is the host', () => {
  const clock = new FakeClock();
  const eps = [ep('a'), ep('b')];
  for (const kind of ['round-robin', 'least-request', 'p2c-ewma'] as const) {
    const b = createBalancer<Ep>(kind, { clock, random: seededRandom(16) });
    assert.equal(b.kind, kind);
    b.setEndpoints(eps);
    assert.equal(b.pick([]), null);
    const got = b.pick(eps);
    assert.ok(got === eps[0] || got === eps[1]);
    b.onStart(got.host);
    b.onFinish(got.host, 3, true);
  }
  const custom = createBalancer<{ id: string }>('least-request', { keyOf: (e) => e.id, random: seededRandom(17) });
  const xs = [{ id: 'x' }, { id: 'y' }];
  custom.onStart('x');
  assert.equal(custom.pick(xs), xs[1]);
  assert.throws(() => createBalancer<Ep>('fastest' as never), /unknown load balancer/);
});

// ---------- impure edges ----------

test('random sources: below(n) is uniform over [0, n) and seeded runs repeat', () => {
  const r = seededRandom(99);
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const v = r.below(10);
    assert.ok(Number.isInteger(v) && v >= 0 && v < 10);
    counts[v]!++;
  }
  for (const c of counts) assert.ok(c > 9_500 && c < 10_500, `bucket ${c}`);
  const a = seededRandom(5);
  const b = seededRandom(5);
  for (let i = 0; i < 100; i++) assert.equal(a.below(1000), b.below(1000));
  assert.equal(randomFrom(() => 0.999).below(4), 3);
});

test('coarse clock: whole milliseconds, still within a synchronous run, moves after its resolution', async () => {
  const clock = new CoarseClock(5);
  const t0 = clock.now();
  assert.ok(Number.isInteger(t0));
  const spinUntil = performance.now() + 20;
  while (performance.now() < spinUntil) {
    // busy: no timer can fire, the coarse time stays put
  }
  assert.equal(clock.now(), t0);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.ok(clock.now() >= t0 + 20, `${clock.now()} vs ${t0}`);
});
