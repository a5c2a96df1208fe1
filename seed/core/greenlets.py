"""Every background greenlet of kanta-seed starts through ``spawn``, so that none can die unseen.

Locust links its own greenlets to an exception handler; a bare ``gevent.spawn`` whose function
raises just ends, and a run whose read-back died would wait forever. ``spawn`` names the greenlet,
adds it to a group when given one (the ``Seeder`` keeps one per process, as Locust's ``Runner`` does),
and hands any exception to ``on_error`` (the Seeder's crash path ends the run with exit 1 and one line
saying what failed). Lower floors that start greenlets (the coordinator's wake-ups) take a ``Spawner``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import gevent
from gevent.pool import Group

log = logging.getLogger("kanta_seed")

OnError = Callable[[str, BaseException], None]
# spawner(name, delay_s, fn, *args) -> the greenlet
Spawner = Callable[..., gevent.Greenlet]


def spawn(
    name: str,
    fn: Callable[..., Any],
    *args: Any,
    on_error: OnError,
    delay: float = 0.0,
    group: Group | None = None,
) -> gevent.Greenlet:
    greenlet = gevent.Greenlet(fn, *args)
    greenlet.name = f"kanta-seed {name}"

    def died(g: gevent.Greenlet) -> None:
        log.debug("kanta-seed: %s failed", name, exc_info=g.exc_info)
        on_error(name, g.exception)

    greenlet.link_exception(died)
    if group is not None:
        group.add(greenlet)
    if delay:
        greenlet.start_later(delay)
    else:
        greenlet.start()
    return greenlet


def said(name: str, error: BaseException) -> None:
    """The on_error of a greenlet with no run to end: one line in the log, never silence."""
    log.error("kanta-seed: internal error in the %s: %s: %s", name, type(error).__name__, error)


def logged_spawner(name: str, delay: float, fn: Callable[..., Any], *args: Any) -> gevent.Greenlet:
    """The default Spawner: guarded, in no group."""
    return spawn(name, fn, *args, on_error=said, delay=delay)
