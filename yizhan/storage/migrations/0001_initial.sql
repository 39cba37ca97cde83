-- Yizhan's first schema: every kind of state, in tables.
-- Applied by `yizhan db upgrade` (yizhan/storage/migrate.py) in one transaction.

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- One change counter per kind of state. A write bumps its kind's counter in the same
-- transaction as the change and sends NOTIFY yizhan '<kind> <version>' (delivered at
-- commit); every process follows the counters (LISTEN, and a look every half second for
-- notifications lost while it was disconnected). The 'stations' counter is the registry
-- version: its row lock is held from the bump to the commit, so versions are committed in
-- order and a process that has applied version v has every change up to v.
CREATE TABLE state_versions (
    kind text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0
);
INSERT INTO state_versions (kind)
VALUES ('stations'), ('tokens'), ('reports'), ('placements'), ('alerts');

-- Values kept once (the salt of the report clients' hashes).
CREATE TABLE yizhan_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

-- The registry document's own members (name, foreign members) in their order, with
-- "features": null where the features go: the export writes the file back as it came.
CREATE TABLE registry_meta (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    document json NOT NULL
);

-- Stations and cooling buses: the feature exactly as stored (json keeps key order and
-- numbers as written), its properties as jsonb and its point as geography for queries,
-- its version (a content hash: the HTTP ETag) and the registry version that wrote it.
CREATE TABLE features (
    id text PRIMARY KEY,
    pos bigint NOT NULL UNIQUE,
    feature json NOT NULL,
    kind text GENERATED ALWAYS AS (feature -> 'properties' ->> 'kind') STORED,
    properties jsonb GENERATED ALWAYS AS ((feature -> 'properties')::jsonb) STORED,
    geog geography(Point, 4326) GENERATED ALWAYS AS (
        CASE WHEN feature -> 'geometry' ->> 'type' = 'Point' THEN
            ST_SetSRID(
                ST_MakePoint(
                    (feature -> 'geometry' -> 'coordinates' ->> 0)::double precision,
                    (feature -> 'geometry' -> 'coordinates' ->> 1)::double precision
                ),
                4326
            )::geography
        END
    ) STORED,
    etag text NOT NULL,
    version bigint NOT NULL
);
CREATE INDEX features_geog ON features USING gist (geog);
-- Positions of features added through the API (after those imported).
CREATE SEQUENCE features_pos_seq;
CREATE INDEX features_kind ON features (kind);

-- One row per change, written in the change's transaction: the same entry as a line of
-- the files backend's audit log. History is read by feature, a page at a time.
CREATE TABLE audit (
    registry_version bigint PRIMARY KEY,
    feature_id text NOT NULL,
    at timestamptz NOT NULL,
    action text NOT NULL,
    entry json NOT NULL
);
CREATE INDEX audit_by_feature ON audit (feature_id, registry_version);

-- Bearer tokens, hashed (the plain token is never stored).
CREATE TABLE tokens (
    pos bigserial UNIQUE,
    id text PRIMARY KEY,
    hash text NOT NULL UNIQUE,
    entry json NOT NULL
);

-- Problem reports, append-only; seq is their order (appends are serialised by a lock).
CREATE TABLE reports (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    station_id text NOT NULL,
    code text NOT NULL,
    client text NOT NULL,
    created_at timestamptz NOT NULL,
    entry json NOT NULL
);
CREATE INDEX reports_by_station ON reports (station_id, created_at);
CREATE INDEX reports_by_client ON reports (client, created_at);

-- Where operators put cooling buses; never two overlapping windows for one bus.
CREATE TABLE placements (
    pos bigserial UNIQUE,
    id text PRIMARY KEY,
    bus_id text NOT NULL,
    starts timestamptz NOT NULL,
    until timestamptz NOT NULL,
    entry json NOT NULL,
    EXCLUDE USING gist (bus_id WITH =, tstzrange(starts, until) WITH &&)
);

-- Heat alerts.
CREATE TABLE alerts (
    pos bigserial UNIQUE,
    id text PRIMARY KEY,
    starts timestamptz NOT NULL,
    until timestamptz NOT NULL,
    entry json NOT NULL
);

-- Rate-limit counters: one row per counted event, within its window.
CREATE TABLE rate_hits (
    key text NOT NULL,
    window_s double precision NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX rate_hits_by_key ON rate_hits (key, window_s, at);
