// Read the documents `apply -f` sends: YAML with `---` between documents, JSON (YAML 1.2 reads it
// too, and reports errors with line numbers), or a JSON/YAML list of documents. Only syntax is
// checked here; the server validates the contents, so the CLI and the API can never disagree.
import { isSeq, LineCounter, parseAllDocuments } from 'yaml';
import { CliError } from './errors.js';

export interface ParsedDocument {
  value: Record<string, unknown>;
  /** e.g. `web.yaml: document 2, line 7`, to point back into the input. */
  where: string;
}

/** A syntax error or a document that is not a mapping; `message` is one line. */
export class DocumentError extends CliError {
  override name = 'DocumentError';
}

export function parseDocuments(text: string, source: string): ParsedDocument[] {
  const lines = new LineCounter();
  const stream = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const docs = Array.isArray(stream) ? stream : [];
  const out: ParsedDocument[] = [];

  docs.forEach((doc, i) => {
    const n = i + 1;
    const first = doc.errors[0];
    if (first) {
      const { line, col } = lines.linePos(first.pos[0]);
      throw new DocumentError(`${source}: document ${n}, line ${line}, column ${col}: ${describeYamlError(first.message)}`);
    }
    const startLine = lines.linePos(doc.contents?.range?.[0] ?? doc.range[0]).line;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new DocumentError(`${source}: document ${n}, line ${startLine}: ${(e as Error).message}`);
    }
    // Empty documents (a trailing `---`, a file of comments) are what editors leave; skip them.
    if (value === null || value === undefined) return;

    if (Array.isArray(value)) {
      const nodes = isSeq(doc.contents) ? doc.contents.items : [];
      value.forEach((item: unknown, j) => {
        if (item === null || item === undefined) return;
        const node = nodes[j] as { range?: [number, number, number] } | undefined;
        const line = node?.range ? lines.linePos(node.range[0]).line : startLine;
        const where = `${source}: document ${n} item ${j + 1}, line ${line}`;
        out.push({ value: asMapping(item, where), where });
      });
      return;
    }
    const where = `${source}: document ${n}, line ${startLine}`;
    out.push({ value: asMapping(value, where), where });
  });
  return out;
}

function asMapping(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new DocumentError(`${where}: expected a mapping with kind, name and spec, got ${Array.isArray(v) ? 'a list' : typeof v}`);
  }
  return v as Record<string, unknown>;
}

/** yaml's messages end with ` at line L, column C:` and a code excerpt; we give the line ourselves. */
function describeYamlError(message: string): string {
  const firstLine = message.split('\n', 1)[0] ?? message;
  return firstLine.replace(/ at line \d+, column \d+:?\s*$/, '').replace(/:\s*$/, '');
}
