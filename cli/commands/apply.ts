// `hostmesh apply -f FILE`: every document of every file in ONE request, so the registry takes
// all of them or none; the server validates, and its errors are pointed back at the input.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { api } from '../api.js';
import { parseDocuments, type ParsedDocument } from '../documents.js';
import { ApiError, CliError, errorLine, UsageError } from '../errors.js';
import { renderJson, renderYaml } from '../output.js';
import { objectRef } from '../targets.js';
import { addOutputOption, outputOf, print, withClient } from './common.js';

interface ApplyOptions {
  filename: string[];
  dryRun?: boolean;
}

export function registerApply(program: Command): void {
  const cmd = program
    .command('apply')
    .description('create or update resources from YAML or JSON documents, all or nothing')
    .requiredOption('-f, --filename <file>', 'file to read, - for stdin (repeatable)', collect)
    .option('--dry-run', 'validate and report what would change, without changing it');
  addOutputOption(cmd);
  cmd.action(async (opts: ApplyOptions, self: Command) => {
    const output = outputOf(self);
    const docs = opts.filename.flatMap((f) => parseDocuments(readInput(f), displayName(f)));
    if (docs.length === 0) throw new CliError(`no documents in ${opts.filename.map(displayName).join(', ')}`);
    const dryRun = opts.dryRun === true;

    const res = await withClient(self, async (c) => {
      try {
        return await api.apply(
          c,
          docs.map((d) => d.value),
          dryRun,
        );
      } catch (e) {
        throw pointAtInput(e, docs);
      }
    });
    if (output === 'json') return print(renderJson(res));
    if (output === 'yaml') return print(renderYaml(res));
    const suffix = dryRun ? ' (dry run)' : '';
    print(res.results.map((r) => `${objectRef(r.kind, r.name)} ${r.action}${suffix}\n`).join(''));
  });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function displayName(file: string): string {
  return file === '-' ? '<stdin>' : file;
}

function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`cannot read ${file}: no such file`);
    if (code === 'EISDIR') throw new UsageError(`cannot read ${file}: it is a directory (give files, one -f each)`);
    if (code === 'EACCES') throw new CliError(`cannot read ${file}: permission denied`);
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

/**
 * The server names fields as `documents[i].…`, indexes into what was sent; add which file and
 * line that document came from, since empty documents and several files shift the numbering.
 */
export function pointAtInput(e: unknown, docs: readonly ParsedDocument[]): unknown {
  if (!(e instanceof ApiError)) return e;
  const field = e.violations[0]?.field ?? '';
  const m = /^documents\[(\d+)\]/.exec(field) ?? /documents\[(\d+)\]/.exec(e.message);
  const doc = m ? docs[Number(m[1])] : undefined;
  if (!doc) return e;
  return new CliError(`${errorLine(e)} (${doc.where})`);
}
