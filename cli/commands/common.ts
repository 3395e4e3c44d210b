// What the API commands share: the connection flags, the output flag, and a client that is
// always closed so that no pooled socket keeps the process alive after the answer is printed.
import { Option, type Command } from 'commander';
import type { ApiClient } from '../client.js';
import { resolveConnection, type ConnectionFlags } from '../connection.js';
import { OUTPUT_FORMATS, parseOutputFormat, type OutputFormat } from '../output.js';

/** Added to the program once; commander accepts them before or after any subcommand. */
export function addConnectionOptions(program: Command): Command {
  return program
    .option('--server <url>', 'server address, host:port or https://host:port (env HOSTMESH_ADDR)')
    .option('--token <token>', 'admin API token (env HOSTMESH_TOKEN)')
    .option('--ca-file <pem>', 'mesh root certificate the server must chain to (env HOSTMESH_CA_FILE)')
    .option(
      '--data-dir <dir>',
      'server data dir: `server` keeps its state there, other commands read server.json, admin.token and ca/root.crt.pem from it (env HOSTMESH_DATA_DIR)',
    );
}

export function addOutputOption(cmd: Command, formats: readonly OutputFormat[] = OUTPUT_FORMATS): Command {
  return cmd.addOption(new Option('-o, --output <format>', 'output format').choices(formats).default('table'));
}

export interface CommonOptions extends ConnectionFlags {
  output?: string;
}

export function outputOf(cmd: Command): OutputFormat {
  return parseOutputFormat((cmd.opts() as CommonOptions).output);
}

export async function withClient<T>(cmd: Command, fn: (client: ApiClient) => Promise<T>): Promise<T> {
  const o = cmd.optsWithGlobals() as CommonOptions;
  // Loaded here, not at the top: `hostmesh agent` shares this program and needs no HTTP client.
  const { ApiClient } = await import('../client.js');
  const client = new ApiClient(resolveConnection({ server: o.server, token: o.token, caFile: o.caFile, dataDir: o.dataDir }));
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export function print(text: string): void {
  process.stdout.write(text);
}

/** Notes for a person (e.g. "no services found") go to stderr, so stdout stays clean for pipes. */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}
