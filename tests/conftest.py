from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import YALE_ZIP, Standin, start_standin


@pytest.fixture
def standin(tmp_path) -> Iterator[Standin]:
    server = start_standin(tmp_path / "standin")
    yield server
    server.stop()


@pytest.fixture
def standin_factory(tmp_path) -> Iterator:
    """Start stand-ins with fault flags: ``standin_factory("--error-rate", "0.2")``."""
    started: list[Standin] = []

    def make(*extra: str) -> Standin:
        server = start_standin(tmp_path / f"standin{len(started)}", *extra)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def yale_zip():
    assert YALE_ZIP.is_file(), f"the Yale data set is expected at {YALE_ZIP} (or set KANTA_SEED_YALE)"
    return YALE_ZIP


@pytest.fixture
def processes():
    from .helpers import Processes

    procs = Processes()
    yield procs
    procs.cleanup()
