// Draining HTTP/1.1 connections on a graceful stop: a connection between requests is closed at once
// (its client opens a new one elsewhere, as after any keep-alive close); one serving a request is
// left to finish it and is closed on a later pass.

export interface DrainableSession {
  /** A request is being served on it. */
  readonly busy: boolean;
  teardown(): void;
}

/** Close and forget the sessions that are between requests; true when none is left. */
export function closeIdleSessions(sessions: Set<DrainableSession>): boolean {
  for (const s of sessions) {
    if (s.busy) continue;
    s.teardown();
    sessions.delete(s);
  }
  return sessions.size === 0;
}
