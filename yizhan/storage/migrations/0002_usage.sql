-- PLACEHOLDER on the proposals-photos branch only: the usage-store branch adds the real
-- 0002_usage.sql (check-ins and visit counts); take that one when merging. Migrations must be
-- numbered 1..n (yizhan/storage/migrate.py), so 0003 needs a 0002 to be applied.
SELECT 1;
