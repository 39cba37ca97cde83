"""The throwaway PostgreSQL cluster the database tests run on (tests/pgcluster.py)."""

from __future__ import annotations

from tests.pgcluster import Cluster


def test_cluster_has_postgis_and_survives_a_restart(pg_cluster: Cluster) -> None:
    pg_cluster.psql("CREATE EXTENSION IF NOT EXISTS postgis")
    assert pg_cluster.psql("SELECT postgis_lib_version()").strip().startswith("3.")
    pg_cluster.psql("CREATE TABLE IF NOT EXISTS probe (x int); INSERT INTO probe VALUES (7)")
    pg_cluster.restart()
    assert pg_cluster.psql("SELECT sum(x) FROM probe").strip() == "7"
    pg_cluster.psql("DROP TABLE probe")
