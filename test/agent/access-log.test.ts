// The access log file and logrotate: reopen() (what SIGHUP calls, through the log-files registry)
// sends the lines after it to a new file at the path and leaves those before it in the moved one,
// whole and each once, even with writes in flight; a path that cannot be opened drops lines instead
// of throwing into the request, and a reopen once the path is usable again recovers. No sockets.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { AccessLog } from '../../agent/observability/access-log.js';
import { reopenLogFiles } from '../../agent/observability/log-files.js';
import type { Logger } from '../../shared/log.js';
import { waitFor } from '../helpers/agent.js';
import { tempDir } from '../helpers/server.js';

const dir = tempDir('hostmesh-access-log-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A logger whose lines land in `lines` (to see what the access log says about itself). */
function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

/** The `n` field of every line of a file; throws on a line that is not whole JSON. */
function numbers(file: string): number[] {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  if (text === '') return [];
  assert.ok(text.endsWith('\n'), `${path.basename(file)} ends in a whole line`);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => {
      const o = JSON.parse(l) as { log: string; n: number };
      assert.equal(o.log, 'access');
      return o.n;
    });
}

const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test('reopen before the first line creates nothing; after a rename, new lines go to a new file at the path', async () => {
  const file = path.join(dir, 'simple', 'access.log');
  const { log } = captureLog();
  const access = new AccessLog(file, log);
  assert.deepEqual(reopenLogFiles(), [], 'nothing is open yet, so nothing is tracked');
  access.reopen();
  assert.equal(fs.existsSync(file), false, 'no line, no file');

  for (let n = 0; n < 20; n++) access.write({ n });
  await waitFor('the first 20 lines in the file', () => numbers(file).length === 20);
  fs.renameSync(file, `${file}.1`);
  assert.deepEqual(reopenLogFiles(), [file], 'the registry reaches the open file');
  for (let n = 20; n < 30; n++) access.write({ n });
  await waitFor('10 lines in the new file', () => numbers(file).length === 10);
  access.close();
  assert.deepEqual(numbers(`${file}.1`), range(0, 20), 'the moved file keeps the lines before the reopen');
  assert.deepEqual(numbers(file), range(20, 30), 'the new file has the lines after it');
  assert.deepEqual(reopenLogFiles(), [], 'a closed log is no longer tracked');
});

test('reopen in the middle of a burst of writes: every line whole, each in exactly one file, in order', async () => {
  const file = path.join(dir, 'burst', 'access.log');
  const { log, lines } = captureLog();
  const access = new AccessLog(file, log);
  const total = 30_000;
  access.write({ n: 0 });
  await waitFor('the file open', () => numbers(file).length === 1);
  let n = 1;
  for (let round = 0; round < 3; round++) {
    // Lines are queued faster than they are written: the rename and the reopen find a write in flight.
    for (const stop = n + total / 3 - (round === 0 ? 1 : 0); n < stop; n++) access.write({ n, pad: 'x'.repeat(100) });
    // The previous reopen has made the new file (logrotate too only moves a file that exists).
    await waitFor('a file at the path', () => fs.existsSync(file), 5000, 1);
    fs.renameSync(file, `${file}.${round + 1}`);
    access.reopen();
  }
  access.write({ n });
  n++;
  const files = (): string[] => [file, `${file}.1`, `${file}.2`, `${file}.3`];
  await waitFor('every line written', () => files().reduce((a, f) => a + numbers(f).length, 0) === n, 15_000);
  access.close();
  const seen = files().flatMap((f) => numbers(f));
  assert.deepEqual(sorted(seen), range(0, n), 'each line once, none lost');
  for (const f of files()) {
    const ns = numbers(f);
    assert.deepEqual(ns, sorted(ns), `${path.basename(f)} holds its lines in order`);
  }
  assert.ok(numbers(file).includes(n - 1), 'the last line is in the file at the path');
  assert.equal(lines.filter((l) => (l['level'] as number) >= 50).length, 0, JSON.stringify(lines));
});

test('a path that cannot be opened drops lines without throwing; a reopen once it can recovers', async () => {
  const blocker = path.join(dir, 'blocked');
  fs.writeFileSync(blocker, 'a file where the directory should be');
  const file = path.join(blocker, 'access.log');
  const { log, lines } = captureLog();
  const access = new AccessLog(file, log);
  access.write({ n: 0 });
  await waitFor('the open error logged', () => lines.find((l) => String(l['msg']).startsWith('cannot open the access log')));
  for (let n = 1; n < 5; n++) assert.doesNotThrow(() => access.write({ n }), 'a request never pays for a broken log');

  fs.rmSync(blocker);
  reopenLogFiles();
  for (let n = 5; n < 8; n++) access.write({ n });
  await waitFor('lines in the file once the path works', () => numbers(file).length === 3);
  access.close();
  assert.deepEqual(numbers(file), [5, 6, 7]);
  // And at exit, pino's flush hook must not trip over the destination that never opened (the test
  // process would then fail after its tests passed).
});

test('a reopen that fails keeps the lines going to the file already open, and says so', async () => {
  const sub = path.join(dir, 'failing');
  const file = path.join(sub, 'access.log');
  const { log, lines } = captureLog();
  const access = new AccessLog(file, log);
  access.write({ n: 0 });
  await waitFor('the first line', () => numbers(file).length === 1);
  fs.renameSync(sub, `${sub}.moved`);
  fs.writeFileSync(sub, 'a file where the directory should be');
  access.reopen();
  await waitFor('the reopen error logged', () => lines.find((l) => String(l['msg']).startsWith('cannot reopen the access log')));
  access.write({ n: 1 });
  await waitFor('the line in the old file', () => numbers(path.join(`${sub}.moved`, 'access.log')).length === 2);
  access.close();
});
