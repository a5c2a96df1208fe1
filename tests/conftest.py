from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .helpers import SUITE_CACHE, YALE_ZIP, Standin, start_standin
from .tripwire import Tripwire

KANTA_DEFAULT_PORT = 8000  # where a Kanta developer's own stack listens: the suite never goes there
TRIPWIRE = Tripwire(KANTA_DEFAULT_PORT, SUITE_CACHE / "tripwire-hits.txt")
# kanta-seed keeps ledgers per user (XDG cache): the suite's, in this process too, are its own.
os.environ["XDG_CACHE_HOME"] = str(SUITE_CACHE)
# The in-process tests import Locust, which monkey-patches the standard library with gevent unless told
# not to; in a pytest-xdist worker (threads of its own) that deadlocks. gevent's own primitives work
# unpatched, and every real locust process the tests start patches itself (helpers.child_env).
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"


# Modules whose tests run real processes (locust, the stand-in, a browser); a test elsewhere that asks for
# one of PROCESS_FIXTURES is one too. Everything else is marked unit: `pytest -m unit -n 0` runs in seconds.
E2E_MODULES = {
    "test_bad_input", "test_bench_smoke", "test_distributed", "test_exactly_once", "test_perf_gate",
    "test_pipeline", "test_seed_or_bench", "test_seed_run", "test_standin", "test_web_host", "test_webui",
    "test_webui_rerun", "test_report_html", "test_figures",
}  # fmt: skip
PROCESS_FIXTURES = {"standin", "fast_standin", "standin_factory", "processes", "browser", "ui_factory"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        e2e = module in E2E_MODULES or bool(PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())))
        item.add_marker(pytest.mark.e2e if e2e else pytest.mark.unit)


def controller(config: pytest.Config) -> bool:
    """The one process of a session (not a pytest-xdist worker): where the tripwire lives."""
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if controller(session.config):
        TRIPWIRE.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not controller(session.config):
        return
    TRIPWIRE.stop()
    if TRIPWIRE.hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if not controller(terminalreporter.config):
        return
    if TRIPWIRE.hits:
        terminalreporter.section("SAFETY: the suite talked to Kanta's default port", red=True, bold=True)
        for hit in TRIPWIRE.hits:
            terminalreporter.write_line(f"connection to port {KANTA_DEFAULT_PORT} from {hit}")
        terminalreporter.write_line(
            "a test reached localhost:8000, where a developer's own Kanta stack listens: give it -H"
        )
    elif TRIPWIRE.busy:
        terminalreporter.write_line(
            f"note: {', '.join(TRIPWIRE.busy)} is held by another program, so the tripwire could not"
            " watch it; the suite sends nothing there by design (the default-host case runs in a"
            " network namespace of its own)"
        )


@pytest.fixture
def standin(tmp_path) -> Iterator[Standin]:
    server = start_standin(tmp_path / "standin")
    yield server
    server.stop()


@pytest.fixture
def fast_standin(tmp_path) -> Iterator[Standin]:
    """A stand-in with no pipeline (stores 20 ms after the 202): for tests that are not about Kanta's lag."""
    server = start_standin(tmp_path / "fast-standin", "--instant")
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
