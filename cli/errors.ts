// The CLI's failure types. Each becomes exactly one `error: …` line on stderr; the class decides
// the exit code, so commands throw and only main.ts writes to stderr and exits.
import type { Violation } from '../shared/errors.js';

/** Something the operator can fix on the command line: exit code 2, like commander's own. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A problem with the local setup or the connection to the server: exit code 1. */
export class CliError extends Error {
  override name = 'CliError';
}

/** The server answered with an error body `{error: {code, message, violations?}}`. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: string;
  readonly violations: Violation[];

  constructor(status: number, code: string, message: string, violations: Violation[] = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.violations = violations;
  }
}

export function exitCodeFor(e: unknown): number {
  return e instanceof UsageError ? 2 : 1;
}

/**
 * The single line printed for a failure. Validation errors lead with the first violation's field
 * because that is what the operator has to go and edit.
 */
export function errorLine(e: unknown): string {
  if (e instanceof ApiError) {
    const first = e.violations[0];
    if (e.code === 'HM_ERR_VALIDATION' && first) {
      const more = e.violations.length > 1 ? ` (and ${e.violations.length - 1} more)` : '';
      return oneLine(`${first.field ? `${first.field}: ` : ''}${first.message}${more}`);
    }
    return oneLine(e.message);
  }
  if (e instanceof Error) return oneLine(e.message || e.name);
  return oneLine(String(e));
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
