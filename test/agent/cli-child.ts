// A stand-in for the `hostmesh` executable with only the agent command, shaped like cli/program.ts
// (program-wide --server/--token, exitOverride) and cli/main.ts (one `error:` line, exit codes), so
// tests can run `agent` as a real process before it is wired into the CLI.
import { Command, CommanderError } from 'commander';
import { registerAgentCommand } from '../../agent/cli.js';

const program = new Command('hostmesh').exitOverride().option('--server <url>', 'server').option('--token <token>', 'token');
registerAgentCommand(program);
try {
  await program.parseAsync(process.argv);
  process.exitCode = 0;
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : 2;
  else {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
