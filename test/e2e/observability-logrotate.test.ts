// logrotate and the access log file, end to end: requests go through the mesh, the file is renamed
// (as logrotate does) while traffic keeps flowing, the agent process gets SIGHUP, and from then on
// lines land in a new file at the path while the moved one keeps the earlier lines; no line is cut
// or lost, no request fails, and the agent lives on. Real server, real agent processes; addresses
// 127.0.9.1–127.0.9.2 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { startTwoHosts } from '../helpers/two-hosts.js';
import { waitFor, type TestAgent } from '../helpers/agent.js';
import { agentTails, Cleanup, describeResult, failureSummary, httpRequest, sleep, startLoad } from '../helpers/traffic.js';

const A = '127.0.9.1'; // api: calls web; access log to a file; the agent that gets SIGHUP
const B = '127.0.9.2'; // web
const WEB_OUT = 19901;
const DB_OUT = 19902;
const MESH = { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '2s', accessLog: true };

/** The paths of a file's access log lines, in order; throws on a line that is not whole JSON. */
function loggedPaths(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  if (text === '') return [];
  if (!text.endsWith('\n')) throw new Error(`${path.basename(file)} ends in the middle of a line: ${JSON.stringify(text.slice(-200))}`);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.equal(o['log'], 'access', line);
      return String(o['path']);
    });
}

function alive(agent: TestAgent): boolean {
  return agent.proc.exitCode === null && agent.proc.signalCode === null;
}

describe('access log file: logrotate moves it, SIGHUP reopens it', { timeout: 90_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let logFile: string;
  const get = (p: string) => httpRequest({ host: A, port: WEB_OUT, path: p, timeoutMs: 5000 });

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    const dir = tempDir('hostmesh-logrotate-');
    bag.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    logFile = path.join(dir, 'logs', 'access.log');
    ({ a, b } = await startTwoHosts(s, bag, {
      prefix: 'rotate',
      A,
      B,
      webOut: WEB_OUT,
      dbOut: DB_OUT,
      meshSpec: MESH,
      extra: { a: { accessLog: { path: logFile } } },
    }));
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('SIGHUP before the access log has a line: the agent lives on, and no file appears', async () => {
    a.proc.kill('SIGHUP');
    await waitFor('the agent to log the SIGHUP', () => a.output().includes('no log file open to reopen'), 5000);
    assert.ok(alive(a), `the agent is alive${agentTails([a])}`);
    assert.equal((await a.admin('/readyz')).status, 200);
    assert.equal(fs.existsSync(logFile), false);
  });

  test('rename, SIGHUP under load: old lines stay in the moved file, new ones go to a new file, none cut or lost', { timeout: 40_000 }, async () => {
    const before: string[] = [];
    for (let i = 0; i < 20; i++) {
      const p = `/before/${i}`;
      const r = await get(p);
      assert.equal(r.status, 200, describeResult(r) + agentTails([a, b]));
      before.push(p);
    }
    await waitFor('the 20 lines in the file', () => loggedPaths(logFile).length === before.length);

    // Traffic keeps flowing through the rotation: four keep-alive connections, back to back.
    let k = 0;
    const during: string[] = [];
    const load = startLoad({
      host: A,
      port: WEB_OUT,
      concurrency: 4,
      path: () => {
        const p = `/during/${k++}`;
        during.push(p);
        return p;
      },
    });
    await sleep(300);
    const moved = `${logFile}.1`;
    fs.renameSync(logFile, moved);
    // Until the signal, lines keep going to the moved file (as between logrotate's rename and its postrotate).
    await waitFor('lines in the moved file', () => loggedPaths(moved).length > before.length + 5, 5000);
    a.proc.kill('SIGHUP');
    await waitFor('a new file at the path', () => fs.existsSync(logFile), 5000);
    await sleep(300);
    // A second SIGHUP with nothing moved reopens the same file: it appends, it does not truncate.
    const beforeSecond = loggedPaths(logFile).length;
    a.proc.kill('SIGHUP');
    await sleep(300);
    const samples = await load.stop();
    assert.equal(samples.filter((x) => x.status !== 200).length, 0, failureSummary(samples) + agentTails([a, b]));
    assert.equal(samples.length, during.length, 'every request the load sent was answered');
    assert.ok(during.length > 20, `enough requests during the rotation (${during.length})`);

    const afterPaths: string[] = [];
    for (let i = 0; i < 20; i++) {
      const p = `/after/${i}`;
      assert.equal((await get(p)).status, 200);
      afterPaths.push(p);
    }
    const total = before.length + during.length + afterPaths.length;
    await waitFor(`all ${total} lines in the two files`, () => loggedPaths(moved).length + loggedPaths(logFile).length === total, 10_000);

    const old = loggedPaths(moved);
    const fresh = loggedPaths(logFile);
    assert.deepEqual([...old, ...fresh].sort(), [...before, ...during, ...afterPaths].sort(), 'each request logged exactly once, across the two files');
    assert.deepEqual(old.slice(0, before.length), before, 'the lines before the rotation stay in the moved file');
    assert.ok(old.length > before.length, 'lines written between the rename and the SIGHUP went to the moved file too');
    assert.deepEqual(fresh.slice(-afterPaths.length), afterPaths, 'the lines after it are in the new file at the path');
    assert.ok(fresh.length > beforeSecond && beforeSecond > 0, 'the second SIGHUP kept the file’s lines');
    assert.ok(old.every((p) => !p.startsWith('/after/')), 'nothing after the SIGHUP in the moved file');

    assert.ok(alive(a), `the agent is alive${agentTails([a])}`);
    assert.equal((await a.admin('/readyz')).status, 200);
    const said = a.output().split('\n').filter((l) => l.includes('"reopening log files"'));
    assert.equal(said.length, 2, 'one log line per SIGHUP');
    assert.ok(said.every((l) => l.includes(`"files":[${JSON.stringify(logFile)}]`)), said.join('\n'));
    assert.equal((await get('/still-serving')).status, 200);
  });
});
