"""Every background greenlet of kanta-seed starts here, so that none can die unseen.

Locust links its own greenlets to an exception handler; a bare ``gevent.spawn`` whose function
raises just ends, and a run whose read-back died would wait forever. ``spawn`` names the greenlet
and hands any exception to ``on_error`` (which ends the run with exit 1 and one line saying what
failed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import gevent

log = logging.getLogger("kanta_seed")

OnError = Callable[[str, BaseException], None]


def spawn(
    name: str, fn: Callable[..., Any], *args: Any, on_error: OnError, delay: float = 0.0
) -> gevent.Greenlet:
    greenlet = gevent.spawn_later(delay, fn, *args) if delay else gevent.spawn(fn, *args)
    greenlet.name = f"kanta-seed {name}"

    def died(g: gevent.Greenlet) -> None:
        log.debug("kanta-seed: %s failed", name, exc_info=g.exc_info)
        on_error(name, g.exception)

    greenlet.link_exception(died)
    return greenlet
