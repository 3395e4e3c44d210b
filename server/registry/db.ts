// Opens the SQLite registry: WAL for crash safety with concurrent readers, numbered migrations
// tracked in PRAGMA user_version so a newer server upgrades an older data dir in place.
import Database from 'better-sqlite3';
import { HmError } from '../../shared/errors.js';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

export function openDatabase(file: string): Db {
  let db: Db;
  try {
    db = new Database(file, { timeout: 5000 });
    db.pragma('journal_mode = WAL');
    // FULL: a committed write survives power loss, not just a process crash.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    // Touch the schema so a corrupt file fails here, with our message, not on first use.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (e) {
    throw new HmError('HM_ERR_STARTUP', `cannot open database ${file}: ${(e as Error).message}`, { cause: e });
  }
  migrate(db, file);
  return db;
}

function migrate(db: Db, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new HmError(
      'HM_ERR_STARTUP',
      `database ${file} is at schema version ${current}, newer than this server understands (${MIGRATIONS.length}); upgrade hostmesh`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    const step = db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    });
    try {
      step();
    } catch (e) {
      throw new HmError('HM_ERR_STARTUP', `database migration ${v + 1} failed on ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
}
