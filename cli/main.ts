#!/usr/bin/env node
// The `hostmesh` executable: runs the command tree and turns every failure into one
// `error: …` line and an exit code (2 for usage, 1 for everything else). No stack traces.
import { CommanderError } from 'commander';
import { errorLine, exitCodeFor } from './errors.js';
import { buildProgram } from './program.js';

async function main(argv: string[]): Promise<number> {
  // `hostmesh get services | head` closes our stdout early; that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed it already
    process.stderr.write(`error: ${errorLine(e)}\n`);
    return exitCodeFor(e);
  }
}

process.exitCode = await main(process.argv);
