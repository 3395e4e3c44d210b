// Numbered schema migrations. Append only: never edit a shipped step, add a new one.
export const MIGRATIONS: readonly string[] = [
  // 1: the registry as of the first release.
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  INSERT INTO meta (key, value) VALUES ('revision', '0');

  CREATE TABLE resources (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    labels     TEXT,
    spec       TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, name)
  ) STRICT;

  CREATE TABLE hosts (
    name             TEXT PRIMARY KEY,
    address          TEXT,
    agent_version    TEXT,
    facts            TEXT,
    token_id         TEXT,
    allowed_services TEXT,
    applied_revision INTEGER,
    last_nack        TEXT,
    cert_serial      TEXT,
    cert_expires_at  TEXT,
    connected        INTEGER NOT NULL DEFAULT 0,
    last_seen_at     TEXT,
    joined_at        TEXT NOT NULL,
    revision         INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE instances (
    service    TEXT NOT NULL,
    host       TEXT NOT NULL REFERENCES hosts(name) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    port       INTEGER NOT NULL,
    labels     TEXT NOT NULL DEFAULT '{}',
    healthy    INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service, host)
  ) STRICT;
  CREATE INDEX instances_by_host ON instances(host);

  CREATE TABLE join_tokens (
    id          TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    description TEXT,
    single_use  INTEGER NOT NULL,
    services    TEXT,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_count  INTEGER NOT NULL DEFAULT 0,
    revoked_at  TEXT
  ) STRICT;

  CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    description TEXT,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
  ) STRICT;

  CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    old_revision INTEGER,
    new_revision INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX audit_by_kind ON audit(kind, id);
  `,
  // 2: what agents report when they connect: their inbound listener, and the hash of the slice
  // they last applied (so a reconnecting agent that is current is not sent it again).
  `
  ALTER TABLE hosts ADD COLUMN inbound_address TEXT;
  ALTER TABLE hosts ADD COLUMN inbound_port INTEGER;
  ALTER TABLE hosts ADD COLUMN applied_hash TEXT;
  ALTER TABLE hosts ADD COLUMN upstreams TEXT;
  `,
  // 3: the previous host certificate's serial, so an agent that crashed before saving a renewed
  // certificate can still connect with the one it has.
  `
  ALTER TABLE hosts ADD COLUMN prev_cert_serial TEXT;
  `,
];
