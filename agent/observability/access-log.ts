// Access log lines, one JSON object per request (http) or connection (tcp), through pino.
//
// Where they go: with `accessLog.path` in the host config, appended to that file by a pino
// instance of their own (`{"log":"access","time":…,` then the fields), opened on the first line so an agent
// whose mesh never turns access logs on never creates the file; `reopen()` follows logrotate.
// Without a path they go to the agent's own log stream (stdout) marked `"log":"access"`, through
// the agent's logger rather than a second writer on the same fd: two async writers on one pipe
// can interleave partial writes and cut lines in two. Their level is pinned to info so the
// agent's logLevel never filters them out.
import { pino, type Logger as Pino } from 'pino';
import type { Logger } from '../../shared/log.js';

export class AccessLog {
  private sink: Pino | null = null;
  private dest: ReturnType<typeof pino.destination> | null = null;

  constructor(
    private readonly path: string | null,
    private readonly log: Logger,
  ) {}

  write(entry: Record<string, unknown>): void {
    (this.sink ??= this.open()).info(entry);
  }

  /** Reopen the file (after logrotate moved it). */
  reopen(): void {
    this.dest?.reopen();
  }

  close(): void {
    try {
      this.dest?.flushSync();
    } catch {
      // Not open yet (the open is asynchronous), or already gone: nothing to flush.
    }
  }

  private open(): Pino {
    if (this.path === null) return this.log.child({ log: 'access' }, { level: 'info' });
    const dest = (this.dest = pino.destination({ dest: this.path, sync: false, mkdir: true }));
    let warned = false;
    dest.on('error', (e: Error) => {
      if (warned) return;
      warned = true;
      this.log.error({ path: this.path, err: e.message }, 'cannot write the access log; lines are lost until the agent restarts');
    });
    return pino(
      {
        base: null,
        timestamp: pino.stdTimeFunctions.isoTime,
        // In place of the level (which says nothing here): the same mark as on stdout.
        formatters: { level: () => ({ log: 'access' }) },
      },
      dest,
    );
  }
}
