import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostRecord, InstanceRecord, JoinTokenInfo, StatusInfo } from '../../shared/api-types.js';
import type { StoredResource } from '../../shared/resources.js';
import { validateResource } from '../../shared/resources.js';
import { renderStatus } from '../../cli/commands/status.js';
import { parseDocuments } from '../../cli/documents.js';
import { toManifest } from '../../cli/manifest.js';
import { parseOutputFormat, renderTable, renderYaml, renderYamlStream } from '../../cli/output.js';
import { hostColumns, instanceColumns, resourceColumns, tokenState } from '../../cli/tables.js';
import { age, until } from '../../cli/time-format.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const ago = (ms: number): string => new Date(NOW - ms).toISOString();

const web: StoredResource = {
  apiVersion: 'hostmesh/v1',
  kind: 'Service',
  name: 'web',
  spec: { protocol: 'http', port: 8080 },
  status: { revision: 7, createdAt: ago(3 * 3_600_000), updatedAt: ago(60_000) },
};

// Built untyped and cast: shared/resources.ts types `retries.on` as never[] for now (Union over a mapped array).
const route = {
  status: { revision: 9, createdAt: ago(90_000), updatedAt: ago(1000) },
  spec: {
    service: 'web',
    rules: [
      { match: { pathPrefix: '/v2' }, destinations: [{ subset: { version: 'v2' }, weight: 100 }] },
      { destinations: [{ subset: { version: 'v1' }, weight: 90 }, { subset: { version: 'v2' }, weight: 10 }] },
    ],
    timeout: '5s',
    retries: { attempts: 2, perTryTimeout: '1s', on: ['connect-failure', 'reset', '503'] },
  },
  labels: { team: 'edge' },
  name: 'web',
  kind: 'Route',
  apiVersion: 'hostmesh/v1',
} as unknown as StoredResource;

const lines = (s: string): string[] => s.trimEnd().split('\n');

test('services table: NAME PROTOCOL PORT REVISION AGE, aligned', () => {
  const db = { ...web, name: 'database', spec: { protocol: 'tcp', port: 5432 }, status: { ...web.status, revision: 12 } } as StoredResource;
  const out = lines(renderTable(resourceColumns('Service', NOW), [web, db]));
  assert.deepEqual(out, [
    'NAME       PROTOCOL   PORT   REVISION   AGE',
    'web        http       8080   7          3h',
    'database   tcp        5432   12         3h',
  ]);
});

test('routes table counts rules', () => {
  const out = lines(renderTable(resourceColumns('Route', NOW), [route]));
  assert.deepEqual(out[0]!.split(/\s+/), ['NAME', 'SERVICE', 'RULES', 'REVISION', 'AGE']);
  assert.deepEqual(out[1]!.split(/\s+/), ['web', 'web', '2', '9', '90s']);
});

test('hosts and instances tables', () => {
  const host: HostRecord = {
    name: 'web-1',
    spiffeId: 'spiffe://hostmesh.local/host/web-1',
    address: '10.0.0.5',
    agentVersion: '0.1.0',
    facts: null,
    connected: false,
    appliedRevision: 41,
    lastNack: null,
    certExpiresAt: null,
    lastSeenAt: ago(5 * 60_000),
    joinedAt: ago(86_400_000),
  };
  assert.deepEqual(lines(renderTable(hostColumns(NOW), [host])).map((l) => l.split(/\s{2,}/)), [
    ['NAME', 'ADDRESS', 'CONNECTED', 'AGENT', 'REVISION', 'LAST-SEEN'],
    ['web-1', '10.0.0.5', 'no', '0.1.0', '41', '5m ago'],
  ]);
  const inst: InstanceRecord = { id: 'web@web-1', service: 'web', host: 'web-1', address: '10.0.0.5', port: 8080, labels: { version: 'v1', zone: 'a' }, healthy: true, updatedAt: ago(0) };
  assert.deepEqual(lines(renderTable(instanceColumns(), [inst])).map((l) => l.split(/\s{2,}/)), [
    ['SERVICE', 'HOST', 'ADDRESS', 'PORT', 'HEALTHY', 'LABELS'],
    ['web', 'web-1', '10.0.0.5', '8080', 'yes', 'version=v1,zone=a'],
  ]);
});

test('a cell with a newline stays on its row', () => {
  const out = renderTable([{ header: 'A', value: (r: string) => r }], ['one\ntwo']);
  assert.equal(out, 'A\none two\n');
});

test('-o yaml of a resource is a document apply -f reads back unchanged, status.revision included', () => {
  const text = renderYaml(toManifest(route));
  assert.match(text, /^apiVersion: hostmesh\/v1\nkind: Route\nname: web\nlabels:/);
  assert.match(text, /revision: 9/);
  const [doc] = parseDocuments(text, 'route.yaml');
  assert.deepEqual(doc!.value, toManifest(route));
  // …and it is still a valid resource by the shared schema, so the server will take it.
  assert.doesNotThrow(() => validateResource(doc!.value));
});

test('-o yaml of a list is a --- stream that parses back to the same documents', () => {
  const text = renderYamlStream([web, route].map(toManifest));
  const docs = parseDocuments(text, 'all.yaml');
  assert.deepEqual(docs.map((d) => d.value), [toManifest(web), toManifest(route)]);
});

test('status: header, host table with behind marked, and last nacks', () => {
  const s: StatusInfo = {
    revision: 42,
    trustDomain: 'hostmesh.local',
    caFingerprint: 'sha256:' + 'ab'.repeat(32),
    version: '0.1.0',
    startedAt: ago(2 * 3_600_000),
    counts: { Service: 3 },
    hosts: [
      { name: 'web-1', connected: true, agentVersion: '0.1.0', appliedRevision: 42, lastNack: null, certExpiresAt: new Date(NOW + 20 * 3_600_000).toISOString(), lastSeenAt: ago(0), behind: false },
      {
        name: 'web-2',
        connected: false,
        agentVersion: '0.1.0',
        appliedRevision: 40,
        lastNack: { revision: 41, error: 'bad route', at: ago(120_000) },
        certExpiresAt: ago(3_600_000),
        lastSeenAt: ago(600_000),
        behind: true,
      },
    ],
  };
  const out = renderStatus(s, 'https://127.0.0.1:7443', NOW);
  assert.match(out, /^server: +https:\/\/127\.0\.0\.1:7443 \(version 0\.1\.0, up 2h\)$/m);
  assert.match(out, /^revision: +42$/m);
  assert.match(out, /^NAME +CONNECTED +AGENT +APPLIED\/CURRENT +CERT-EXPIRES +LAST-SEEN$/m);
  assert.match(out, /^web-1 +yes +0\.1\.0 +42\/42 +in 20h +now$/m);
  assert.match(out, /^web-2 +no +0\.1\.0 +40\/42 \(behind\) +expired 60m ago +10m ago$/m);
  assert.match(out, /^web-2: last nack of revision 41 2m ago: bad route$/m);
});

test('times and token states', () => {
  assert.equal(age(ago(45_000), NOW), '45s');
  assert.equal(age(ago(3 * 86_400_000), NOW), '3d');
  assert.equal(age(null, NOW), '-');
  assert.equal(until(new Date(NOW + 3_600_000).toISOString(), NOW), 'in 60m');
  const t: JoinTokenInfo = { id: 'a', description: null, singleUse: true, services: null, createdAt: ago(0), expiresAt: new Date(NOW + 1000).toISOString(), usedCount: 0, revokedAt: null };
  assert.equal(tokenState(t, NOW), 'active');
  assert.equal(tokenState({ ...t, usedCount: 1 }, NOW), 'used');
  assert.equal(tokenState({ ...t, expiresAt: ago(1) }, NOW), 'expired');
  assert.equal(tokenState({ ...t, revokedAt: ago(1) }, NOW), 'revoked');
});

test('output formats', () => {
  assert.equal(parseOutputFormat(undefined), 'table');
  assert.equal(parseOutputFormat('JSON'), 'json');
  assert.throws(() => parseOutputFormat('xml'), /unknown output format "xml"/);
});
