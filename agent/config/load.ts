// The agent's config: agent.yaml (optional), then command-line flags on top, then one validation
// pass (shared/host-config.ts) into the frozen runtime form. Nothing starts half-configured.
import fs from 'node:fs';
import { parseDocument } from 'yaml';
import { HmError } from '../../shared/errors.js';
import { resolveHostConfig, type HostConfig } from '../../shared/host-config.js';

/** Flags as commander gives them; each one overrides the same field of the file. */
export interface AgentFlags {
  config?: string;
  server?: string;
  token?: string;
  caFingerprint?: string;
  name?: string;
  address?: string;
  stateDir?: string;
  inbound?: string;
  admin?: string;
  logLevel?: string;
}

const OVERRIDES = ['server', 'token', 'caFingerprint', 'name', 'address', 'stateDir', 'inbound', 'admin', 'logLevel'] as const;

/**
 * Read, merge and resolve. Throws HM_ERR_CONFIG whose message is `<source>: <field>: <message>`
 * (source is the file, or "flags" when there is none) so the CLI can print it as one line.
 */
export function loadHostConfig(flags: AgentFlags, readFile: (file: string) => string = (f) => fs.readFileSync(f, 'utf8')): HostConfig {
  const source = flags.config ?? 'flags';
  const raw: Record<string, unknown> = flags.config === undefined ? {} : readYaml(flags.config, readFile);
  for (const key of OVERRIDES) {
    const v = flags[key];
    if (v !== undefined) raw[key] = v;
  }
  // The CLI's other commands accept a bare host:port for --server; let the agent take it too.
  if (typeof raw['server'] === 'string' && !/^[a-z]+:\/\//i.test(raw['server'])) raw['server'] = `https://${raw['server']}`;
  return resolveHostConfig(raw, source);
}

function readYaml(file: string, readFile: (file: string) => string): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new HmError('HM_ERR_CONFIG', `${file}: (file): cannot read: ${why}`, { cause: e });
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    // The library's message ends "at line L, column C:" followed by a snippet; keep the one line.
    throw new HmError('HM_ERR_CONFIG', `${file}: (yaml): ${first.message.split('\n')[0]!.replace(/:$/, '')}`);
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new HmError('HM_ERR_CONFIG', `${file}: (root): must be a mapping of settings (server:, caFingerprint:, …)`);
  }
  return value as Record<string, unknown>;
}
