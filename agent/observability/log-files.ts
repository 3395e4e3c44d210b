// The files the agent appends to, so that one SIGHUP (logrotate's postrotate) reopens them all.
//
// Process-wide, like the signal itself: the access log is opened deep inside the data plane, on its
// first line, and the signal arrives at the process. A file joins the set when it is opened and
// leaves it when it is closed; the set holds nothing else.

export interface ReopenableFile {
  readonly path: string;
  /** Start writing to a new file at `path`; never throws (failures are the file's to log). */
  reopen(): void;
}

const open = new Set<ReopenableFile>();

/** Track `file` until the returned function is called (when it closes). */
export function trackLogFile(file: ReopenableFile): () => void {
  open.add(file);
  return () => void open.delete(file);
}

/** Reopen every tracked file; returns their paths (for the log line that says so). */
export function reopenLogFiles(): string[] {
  const paths: string[] = [];
  for (const f of open) {
    f.reopen();
    paths.push(f.path);
  }
  return paths;
}
