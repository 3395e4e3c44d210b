// The command tree. Kept apart from main.ts so it can be built without running anything.
import { Command } from 'commander';
import { registerAdminToken } from './commands/admin-token.js';
import { registerApply } from './commands/apply.js';
import { registerCheck } from './commands/check.js';
import { addConnectionOptions } from './commands/common.js';
import { registerDelete } from './commands/delete.js';
import { registerGet } from './commands/get.js';
import { registerServer } from './commands/server.js';
import { registerStat } from './commands/stat.js';
import { registerStatus } from './commands/status.js';
import { registerToken } from './commands/token.js';
import { cliVersion } from './version.js';
import { registerAgentCommand } from '../agent/cli.js';

export function buildProgram(): Command {
  const program = new Command('hostmesh')
    .description('hostmesh: a service mesh for VMs and bare-metal hosts')
    .version(cliVersion())
    // Throw instead of exiting, so usage errors get exit code 2 here rather than commander's 1.
    .exitOverride()
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError();
  addConnectionOptions(program);
  registerServer(program);
  registerAgentCommand(program);
  registerApply(program);
  registerGet(program);
  registerDelete(program);
  registerStatus(program);
  registerStat(program);
  registerToken(program);
  registerAdminToken(program);
  registerCheck(program);
  return program;
}
