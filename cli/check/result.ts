// One line of `hostmesh check`: what was checked, how it went, and for a failure what to do.
export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckItem {
  /** Stable, short, what was checked: "server reachable", "CA pin", "host certificate"… */
  check: string;
  status: CheckStatus;
  /** What was found (a pass says it too, so the output doubles as a description of the host). */
  detail: string;
  /** For a failure: the next thing the operator should do. */
  fix?: string;
}

export const pass = (check: string, detail: string): CheckItem => ({ check, status: 'pass', detail });
export const fail = (check: string, detail: string, fix: string): CheckItem => ({ check, status: 'fail', detail, fix });
export const skip = (check: string, detail: string): CheckItem => ({ check, status: 'skip', detail });

const MARK: Record<CheckStatus, string> = { pass: '✔', fail: '✖', skip: '-' };

export function renderItems(items: readonly CheckItem[]): string {
  let out = '';
  for (const i of items) {
    out += `${MARK[i.status]} ${i.check}: ${i.detail}\n`;
    if (i.fix) out += `    fix: ${i.fix}\n`;
  }
  // A failure's count is the command's error line (stderr, exit 1); only success is said here.
  if (!items.some((i) => i.status === 'fail')) out += '\nall checks passed\n';
  return out;
}
