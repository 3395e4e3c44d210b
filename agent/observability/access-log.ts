// Access log lines, one JSON object per request (http) or connection (tcp), through a pino
// instance of their own: to the agent's stdout by default, or appended to `accessLog.path` of the
// host config. Separate from the agent's log so level filtering never drops them and a file can be
// shipped on its own. The destination is opened on the first line: an agent whose mesh never turns
// access logs on never opens the file.
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
    if (this.path !== null) this.dest?.reopen();
  }

  close(): void {
    try {
      this.dest?.flushSync();
    } catch {
      // Not yet open (async open), or already gone: nothing to flush.
    }
  }

  private open(): Pino {
    const dest = (this.dest = pino.destination({ dest: this.path ?? 1, sync: false, mkdir: this.path !== null }));
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
        // The level says nothing here; `log: "access"` tells these lines from the agent's own on a shared stdout.
        formatters: { level: () => ({ log: 'access' }) },
      },
      dest,
    );
  }
}
