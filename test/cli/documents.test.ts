import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DocumentError, parseDocuments } from '../../cli/documents.js';

test('multi-document YAML: every document, in order', () => {
  const docs = parseDocuments(
    'kind: Service\nname: web\nspec: { protocol: http, port: 8080 }\n---\nkind: Route\nname: web\nspec:\n  service: web\n',
    'm.yaml',
  );
  assert.deepEqual(
    docs.map((d) => d.value),
    [
      { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 8080 } },
      { kind: 'Route', name: 'web', spec: { service: 'web' } },
    ],
  );
  assert.equal(docs[1]!.where, 'm.yaml: document 2, line 5');
});

test('empty documents and comment-only documents are skipped, numbering still follows the file', () => {
  const docs = parseDocuments('---\n# nothing here\n---\n---\nkind: Service\nname: a\n---\n', 'e.yaml');
  assert.equal(docs.length, 1);
  assert.equal(docs[0]!.value['name'], 'a');
  assert.match(docs[0]!.where, /document 3, line 5$/);
  assert.deepEqual(parseDocuments('', 'empty.yaml'), []);
  assert.deepEqual(parseDocuments('# only a comment\n', 'c.yaml'), []);
});

test('a JSON document', () => {
  const docs = parseDocuments('{"kind":"Service",\t"name":"db","spec":{"protocol":"tcp","port":5432}}\n', 'db.json');
  assert.deepEqual(docs.map((d) => d.value), [{ kind: 'Service', name: 'db', spec: { protocol: 'tcp', port: 5432 } }]);
});

test('a JSON array of documents becomes several documents, each pointing at its own line', () => {
  const docs = parseDocuments('[\n  {"kind":"Service","name":"a"},\n  {"kind":"Service","name":"b"}\n]\n', 'list.json');
  assert.deepEqual(
    docs.map((d) => d.value['name']),
    ['a', 'b'],
  );
  assert.equal(docs[1]!.where, 'list.json: document 1 item 2, line 3');
});

test('YAML keeps strings that look like numbers or booleans in 1.1 as written', () => {
  const [doc] = parseDocuments('kind: Route\nspec:\n  retries: { on: [reset, "503"] }\n  on: yes\n', 'r.yaml');
  assert.deepEqual(doc!.value['spec'], { retries: { on: ['reset', '503'] }, on: 'yes' });
});

test('a syntax error is one line naming the file, the document and the line', () => {
  const text = 'kind: Service\nname: a\n---\nkind: Service\n  name: b\n';
  assert.throws(
    () => parseDocuments(text, 'bad.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof DocumentError);
      assert.match(e.message, /^bad\.yaml: document 2, line 4, column 7: Nested mappings/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    },
  );
});

test('broken JSON is reported with its line too', () => {
  assert.throws(() => parseDocuments('{\n "kind": "Service",\n "name": "a"\n "spec": {}\n}\n', 'x.json'), {
    message: /^x\.json: document 1, line 4, column 2: /,
  });
});

test('duplicate keys are an error, not a silent overwrite', () => {
  assert.throws(() => parseDocuments('kind: Service\nname: a\nname: b\n', 'dup.yaml'), { message: /^dup\.yaml: document 1, line 3, column 1: Map keys must be unique/ });
});

test('a document that is not a mapping is refused with its position', () => {
  assert.throws(() => parseDocuments('kind: Service\n---\njust a string\n', 's.yaml'), { message: /^s\.yaml: document 2, line 3: expected a mapping/ });
  assert.throws(() => parseDocuments('[1, 2]', 'n.json'), { message: /^n\.json: document 1 item 1, line 1: expected a mapping/ });
});
