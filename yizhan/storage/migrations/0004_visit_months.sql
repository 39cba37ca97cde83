-- The network's visit rows of a month as packed columns (the arrays of the files' month
-- .npz, little-endian), written by the first whole-network read of the month and deleted by
-- every change to the month's visit_rows in the same transaction (yizhan/storage/pg_usage.py;
-- docs/database.md). visit_rows stays the truth and serves per-station reads.
CREATE TABLE visit_months (
    month date PRIMARY KEY,         -- the first day of the month
    units text[] NOT NULL,          -- unit keys; "unit" holds positions in this array
    day bytea NOT NULL,             -- int32 date.toordinal()
    unit bytea NOT NULL,            -- int32
    hour bytea NOT NULL,            -- int8
    trade bytea NOT NULL,           -- int8
    source bytea NOT NULL,          -- int8
    count bytea NOT NULL            -- int32
);
-- Tens of megabytes of integers a value: stored out of line, not compressed (pglz would cost
-- more time than the bytes it saves).
ALTER TABLE visit_months
    ALTER COLUMN units SET STORAGE EXTERNAL,
    ALTER COLUMN day SET STORAGE EXTERNAL,
    ALTER COLUMN unit SET STORAGE EXTERNAL,
    ALTER COLUMN hour SET STORAGE EXTERNAL,
    ALTER COLUMN trade SET STORAGE EXTERNAL,
    ALTER COLUMN source SET STORAGE EXTERNAL,
    ALTER COLUMN count SET STORAGE EXTERNAL;
