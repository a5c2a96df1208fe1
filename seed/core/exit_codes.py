"""kanta-seed's exit codes (the README's table), and the result word each one is said with."""

from __future__ import annotations

EXIT_OK = 0  # every image where it should be
EXIT_NOT_ALL = 1  # not every image made it (or the run could not vouch for it)
EXIT_BAD_INPUT = 2  # refused before the first request
EXIT_REGRESSION = 3  # every image made it, but a check or the baseline failed
RESULTS = {
    EXIT_OK: "pass",
    EXIT_NOT_ALL: "incomplete",
    EXIT_BAD_INPUT: "bad input",
    EXIT_REGRESSION: "regression",
}
