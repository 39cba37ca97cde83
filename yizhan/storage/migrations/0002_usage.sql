-- Usage: check-ins, the visit rows (aggregates) of finished days, managers' visit counts and
-- the daily salts of client hashes (yizhan/storage/pg_usage.py; docs/database.md).

-- Raw check-ins of the last days: the client only as a hash under the day's salt. Written in
-- one transaction per batch under an advisory lock (the rules are checked on the rows read
-- up to then, so seq is also commit order); a finished day is aggregated into visit_rows
-- and deleted (hashes live two days at most, as in the files).
CREATE TABLE checkins (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    station_id text NOT NULL,
    stop_id text,
    trade smallint NOT NULL,        -- index into TRADES, -1: not given
    at timestamptz NOT NULL,
    day date NOT NULL,              -- the local day of at
    hour smallint NOT NULL,         -- the local hour of at
    client text NOT NULL,
    located boolean NOT NULL
);
CREATE INDEX checkins_by_day ON checkins (day);
CREATE INDEX checkins_by_station ON checkins (station_id, day);

-- Visit counts as rows (the columns of the files' month .npz): aggregated check-ins,
-- managers' counts are in visit_counts, and the synthetic generator's days.
CREATE TABLE visit_rows (
    day date NOT NULL,
    unit text NOT NULL,             -- station id, or "<bus id>\t<stop id>"
    hour smallint NOT NULL,         -- -1: not known
    trade smallint NOT NULL,        -- -1: not given
    source smallint NOT NULL,       -- index into SOURCES
    count integer NOT NULL
);
CREATE INDEX visit_rows_by_day ON visit_rows (day);
CREATE INDEX visit_rows_by_unit ON visit_rows (unit, day);

-- Bumped whenever days are added to (or replaced in) visit_rows: a process keeps the rows
-- of a period it read until then.
INSERT INTO state_versions (kind) VALUES ('visits');

-- The days visit_rows holds (so that a day is never added twice), and the generator's
-- parameters of a synthetic day.
CREATE TABLE visit_days (
    day date PRIMARY KEY,
    synthetic jsonb
);

-- Managers' visit counts: every change, in the audit format of the files' visits.jsonl.
CREATE TABLE visit_counts (
    seq bigserial PRIMARY KEY,
    station_id text NOT NULL,
    at timestamptz NOT NULL,
    entry json NOT NULL
);

-- The daily salts of client hashes (check-ins, reports), shared by every replica so that
-- their hashes agree. A day's row is deleted keep_days after it. Keep this table out of
-- backups: pg_dump --exclude-table-data=salts (docs/database.md).
CREATE TABLE salts (
    day date PRIMARY KEY,
    salt bytea NOT NULL
);
