"""Session fixtures: one loopback-only network namespace holding a Ray farm (a head and two nodes,
one device each) and a PostgreSQL server. Startup is slow, so they live for the session; every
process they start is stopped at the end, whatever the tests did."""

from __future__ import annotations

import shutil

import pytest

from tests.farm.lab import PG_BIN, Farm, Namespace, Postgres, missing_tools, short_tmp


@pytest.fixture(scope="session")
def netns():
    pytest.importorskip("ray", reason="ray not installed (pip install 'effbench[farm]')")
    why = missing_tools()
    if why:
        pytest.skip(f"farm tests run only inside a loopback-only network namespace: {why}")
    try:
        ns = Namespace.create()
    except Exception as e:
        pytest.skip(f"farm tests run only inside a loopback-only network namespace, and none could be made: {e}")
    try:
        yield ns
    finally:
        ns.destroy()


@pytest.fixture(scope="session")
def postgres(netns):
    pytest.importorskip("psycopg", reason="psycopg 3 not installed (pip install 'psycopg[binary]')")
    if not (PG_BIN / "initdb").exists() or not shutil.which("setpriv"):
        pytest.skip(
            f"PostgreSQL server not installed ({PG_BIN}/initdb missing; apt install postgresql, "
            "or run scripts/setup-system.sh)"
        )
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' user to run the server as (apt install postgresql creates it)")
    pg = Postgres(netns, short_tmp("effb-pg-"))
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def farm(netns):
    lab = Farm(netns, short_tmp("effb-farm-"))
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def pg_db(postgres):
    """A fresh database for one test: (URL for bench inside the namespace, URL for the test)."""
    name = postgres.new_database()
    return postgres.tcp_url(name), postgres.socket_url(name)
