// The reconnect-storm admission schedule, without sockets: arrivals per second never exceed the rate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdmissionSchedule } from '../../server/push/admission.js';

test('at most `rate` hosts get in per second; the others get a reserved second, and get in then', () => {
  const a = new AdmissionSchedule(() => 50);
  const t0 = 1_000_000;
  const waits = new Map<string, number>();
  for (let i = 0; i < 1000; i++) waits.set(`h${i}`, a.admit(`h${i}`, t0 + (i % 1000)));
  const perSecond = new Map<number, number>();
  for (const w of waits.values()) perSecond.set(w, (perSecond.get(w) ?? 0) + 1);
  assert.equal(perSecond.get(0), 50);
  assert.ok(Math.max(...perSecond.values()) <= 50);
  assert.equal(Math.max(...waits.values()), 19, 'the fleet of 1000 is spread over 20 s');
  // Coming back at its second, a host is let in without taking another slot.
  const [host, wait] = [...waits].find(([, w]) => w === 7)!;
  assert.equal(a.admit(host, t0 + 7_000 + 500), 0);
  // Coming back early, it is told the same second again.
  const [early, w2] = [...waits].find(([, w]) => w === 12)!;
  assert.equal(a.admit(early, t0 + 3_000), w2 - 3);
  assert.ok(wait > 0);
});

test('a quiet server lets everyone in at once', () => {
  const a = new AdmissionSchedule(() => 20);
  for (let i = 0; i < 20; i++) assert.equal(a.admit(`h${i}`, 5_000), 0);
  assert.equal(a.admit('late', 5_100), 1);
  assert.equal(a.admit('next-second', 6_000), 0);
});

test('the fleet is scheduled over 25 s up to 1000 hosts, narrowing to 15 s from 5000 on', async () => {
  const { admissionSpanSeconds } = await import('../../server/push/hub.js');
  assert.equal(admissionSpanSeconds(10), 25);
  assert.equal(admissionSpanSeconds(1000), 25);
  assert.equal(admissionSpanSeconds(3000), 20);
  assert.equal(admissionSpanSeconds(5000), 15);
  assert.equal(admissionSpanSeconds(50_000), 15);
});
