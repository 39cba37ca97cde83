-- Proposals of missing stations and photos of stations, in tables (yizhan/storage/pg_records.py).
-- Applied by `yizhan db upgrade` (yizhan/storage/migrate.py) in one transaction.

-- Both kinds follow the others' changes through their counter (NOTIFY yizhan '<kind> <version>').
INSERT INTO state_versions (kind) VALUES ('proposals'), ('photos') ON CONFLICT (kind) DO NOTHING;

-- One row per proposal: the proposal as the files backend keeps its line (entry), and its
-- decision, filled once (an UPDATE … WHERE status = 'pending' under the proposals' advisory
-- lock). "changed" is the proposals counter of the transaction that wrote the row last:
-- every process reads the rows changed since the last counter it saw.
CREATE TABLE proposals (
    seq bigserial UNIQUE,
    id text PRIMARY KEY,
    client text NOT NULL,
    created_at timestamptz NOT NULL,
    district text,
    entry json NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'accepted', 'rejected')),
    decided_at timestamptz,
    decision json,
    station_id text,
    changed bigint NOT NULL,
    CHECK ((status = 'pending') = (decision IS NULL))
);
CREATE INDEX proposals_changed ON proposals (changed);
CREATE INDEX proposals_by_client ON proposals (client, created_at);

-- Photos of stations: the index entry (entry), the re-encoded image and its thumbnail.
-- A removal keeps the row (when, by whom) and drops the bytes.
CREATE TABLE photos (
    id text PRIMARY KEY,
    station_id text NOT NULL,
    taken_on date NOT NULL,
    added_at timestamptz NOT NULL,
    entry json NOT NULL,
    data bytea,
    thumb bytea,
    removed_at timestamptz,
    removed_by json,
    CHECK ((removed_at IS NULL) = (data IS NOT NULL AND thumb IS NOT NULL))
);
CREATE INDEX photos_by_station ON photos (station_id, taken_on) WHERE removed_at IS NULL;
