// Printing: aligned tables for people, JSON and YAML for scripts and for round-tripping through
// `apply -f`. Everything renders to a string so tests can look at it without a terminal.
import { stringify } from 'yaml';
import { UsageError } from './errors.js';

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function parseOutputFormat(text: string | undefined): OutputFormat {
  const f = (text ?? 'table').toLowerCase();
  if ((OUTPUT_FORMATS as readonly string[]).includes(f)) return f as OutputFormat;
  throw new UsageError(`unknown output format "${text}": expected ${OUTPUT_FORMATS.join(', ')}`);
}

export interface Column<T> {
  header: string;
  value: (row: T) => string;
}

const GAP = '   ';

export function renderTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((r) => columns.map((c) => clean(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]): string => values.map((v, i) => v.padEnd(widths[i]!)).join(GAP).trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n') + '\n';
}

/** Two-column `key: value` block for a single object (a created token, the status header). */
export function renderFields(fields: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width)} ${clean(v)}`.trimEnd()).join('\n') + '\n';
}

export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

export function renderYaml(value: unknown): string {
  // lineWidth 0: never fold long strings, so the output stays greppable and diffable.
  return stringify(value, { lineWidth: 0 });
}

/** Several documents, `---` separated: what `apply -f` reads back. */
export function renderYamlStream(values: readonly unknown[]): string {
  return values.map((v) => renderYaml(v)).join('---\n');
}

/** Cells are one line each; a newline in a value would break every column after it. */
function clean(v: string): string {
  return v.replace(/\s*[\r\n]+\s*/g, ' ');
}
