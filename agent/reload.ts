// SIGHUP: reopen the files the agent appends to, after logrotate moved them away
// (`postrotate systemctl kill -s HUP hostmesh-agent`, or `systemctl reload`, whose ExecReload sends
// the same). Nothing else: the host config is not read again (a restart applies it), and listeners,
// connections and requests in flight are not touched.
//
// Node's default for SIGHUP is to exit, so the handler goes in before anything else starts and
// stays until the process ends: a SIGHUP during a join, or during the last moments of a stop, must
// not turn into a death by signal.
import type { Logger } from '../shared/log.js';
import { reopenLogFiles } from './observability/log-files.js';

let installed = false;

/** Handle SIGHUP for the rest of the process's life (once per process, whoever calls). */
export function reopenLogsOnSighup(log: Logger): void {
  if (installed) return;
  installed = true;
  process.on('SIGHUP', () => {
    const files = reopenLogFiles();
    log.info({ signal: 'SIGHUP', files }, files.length > 0 ? 'reopening log files' : 'no log file open to reopen');
  });
}
