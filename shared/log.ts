// One pino root per process; every part takes `child({ component })`. Secrets never reach a log line.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

const REDACT = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'key',
  '*.key',
  'keyPem',
  '*.keyPem',
  'privateKey',
  '*.privateKey',
];

export interface LogOptions {
  level?: string;
  /** Pretty output for people; defaults to whether stdout is a terminal. */
  pretty?: boolean;
  /** Write to stderr instead of stdout (the CLI keeps stdout for results). */
  stderr?: boolean;
}

export function createLogger(name: string, opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env['HOSTMESH_LOG_LEVEL'] ?? 'info';
  // The single-file agent cannot start pino-pretty (a worker that loads it from disk by name), so it
  // logs JSON even to a terminal. The build replaces process.env.HOSTMESH_BUNDLE (dot form: esbuild's define).
  const pretty = opts.pretty ?? (Boolean(process.stdout.isTTY) && process.env.HOSTMESH_BUNDLE !== '1');
  const base: LoggerOptions = { name, level, redact: { paths: REDACT, censor: '[redacted]' } };
  const fd = opts.stderr ? 2 : 1;
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { destination: fd, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return pino(base, pino.destination({ fd, sync: false }));
}
