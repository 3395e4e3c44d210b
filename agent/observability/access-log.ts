// Access log lines, one JSON object per request (http) or connection (tcp), through pino.
//
// Where they go: with `accessLog.path` in the host config, appended to that file by a pino
// instance of their own (`{"log":"access","time":…,` then the fields), opened on the first line so an agent
// whose mesh never turns access logs on never creates the file; `reopen()` follows logrotate.
// Without a path they go to the agent's own log stream (stdout) marked `"log":"access"`, through
// the agent's logger rather than a second writer on the same fd: two async writers on one pipe
// can interleave partial writes and cut lines in two. Their level is pinned to info so the
// agent's logLevel never filters them out.
//
// Reopening (on SIGHUP, agent/reload.ts) cuts and loses no line: sonic-boom finishes the write in
// progress on the old file, holds the lines that come meanwhile, and writes them to the new one
// once it is open. If the new file cannot be opened, lines keep going to the old one.
import { pino, type Logger as Pino } from 'pino';
import type { Logger } from '../../shared/log.js';
import { trackLogFile } from './log-files.js';

type Destination = ReturnType<typeof pino.destination>;

export class AccessLog {
  private sink: Pino | null = null;
  private dest: Destination | null = null;
  private untrack: (() => void) | null = null;
  /** A file is open (the first open is asynchronous). */
  private opened = false;
  /** The first open failed: there is no file to write to, and lines are dropped until reopen(). */
  private broken = false;
  /** From reopen() until the new file is open or failed to open, to tell that failure from a write's. */
  private reopening = false;

  constructor(
    private readonly path: string | null,
    private readonly log: Logger,
  ) {}

  write(entry: Record<string, unknown>): void {
    // sonic-boom throws on a write without a file (fd -1): the request must not pay for the log.
    if (this.broken) return;
    (this.sink ??= this.open()).info(entry);
  }

  /**
   * Reopen the file at its path (after logrotate moved it). A no-op without a path, before the
   * first line (nothing is open; the first line opens the path) and while that first open runs.
   */
  reopen(): void {
    if (this.broken) {
      // Start over: the next line opens the path afresh.
      this.untrack?.();
      this.untrack = null;
      this.sink = null;
      this.dest = null;
      this.broken = false;
      return;
    }
    if (this.dest === null || !this.opened) return;
    this.reopening = true;
    try {
      this.dest.reopen();
    } catch (e) {
      // Only once the destination has been ended: the agent is stopping.
      this.reopening = false;
      this.log.warn({ path: this.path, err: (e as Error).message }, 'cannot reopen the access log');
    }
  }

  close(): void {
    this.untrack?.();
    this.untrack = null;
    try {
      this.dest?.flushSync();
    } catch {
      // Not open yet (the open is asynchronous), or already gone: nothing to flush.
    }
  }

  private open(): Pino {
    if (this.path === null) return this.log.child({ log: 'access' }, { level: 'info' });
    const path = this.path;
    const dest = (this.dest = pino.destination({ dest: path, sync: false, mkdir: true }));
    this.opened = false;
    let warned = false;
    // Each listener first checks that `dest` is still the destination: reopen() drops a broken one.
    dest.on('ready', () => {
      if (this.dest !== dest) return;
      // A file is open (first open or reopen): writes work again, so a later failure is news.
      this.opened = true;
      this.reopening = false;
      warned = false;
    });
    dest.on('error', (e: NodeJS.ErrnoException) => {
      if (this.dest !== dest) return;
      const err = e.code ?? e.message;
      if (!this.opened) {
        this.broken = true;
        // 'close' is what takes pino's flush-at-exit hook off this destination, which would
        // otherwise throw at exit for want of a file.
        dest.emit('close');
        this.log.error({ path, err }, 'cannot open the access log; lines are dropped until it is reopened (SIGHUP) or the agent restarts');
      } else if (this.reopening) {
        this.reopening = false;
        this.log.error({ path, err }, 'cannot reopen the access log; lines keep going to the file already open (send SIGHUP again once the path is writable)');
      } else if (!warned) {
        warned = true;
        this.log.error({ path, err }, 'cannot write the access log; lines may be lost until it is reopened (SIGHUP) or the agent restarts');
      }
    });
    this.untrack = trackLogFile({ path, reopen: () => this.reopen() });
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
