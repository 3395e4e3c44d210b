#!/usr/bin/env node
// `hostmesh-agent`: what a host runs. The entry point of the single-file bundle and of the single
// executable (npm run build:agent), and kept apart from cli/program.ts because that tree reaches
// the server (and so better-sqlite3, a native addon a bundle cannot carry). Only what a host needs
// is registered here: `agent` and `check`. No top-level await: the bundle is CommonJS.
import { Command, CommanderError } from 'commander';
import { registerAgentCommand } from '../agent/cli.js';
import { VERSION } from '../shared/version.js';
import { registerCheck } from './commands/check.js';
import { errorLine, exitCodeFor } from './errors.js';

export function buildAgentProgram(): Command {
  const program = new Command('hostmesh-agent')
    .description('hostmesh agent: the data plane of one host, and its health check')
    .version(VERSION)
    .exitOverride()
    .showSuggestionAfterError();
  registerAgentCommand(program);
  registerCheck(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  try {
    await buildAgentProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    process.stderr.write(`error: ${errorLine(e)}\n`);
    return exitCodeFor(e);
  }
}

void main(process.argv).then((code) => {
  process.exitCode = code;
});
