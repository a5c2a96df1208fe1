"""``kanta-seed`` (or ``python -m seed``): Locust with kanta-seed's locustfile, from any folder.

``kanta-seed --headless -u 5 -r 1 --standin`` is ``locust -f <kanta-seed's locustfile> --headless ...``.
``kanta-seed --help`` lists kanta-seed's own options after Locust's: Locust 2.47 prints ``--help``
before it reads a locustfile, so ``locust --help`` never shows them.

``kanta-seed make-event OUT --photos N ...`` is no Locust run: it composes event-like group photos
(``seed.core.event_photos``); ``kanta-seed make-event --help`` lists its options.
"""

from __future__ import annotations

import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
MAKE_EVENT = "make-event"


def options_help() -> str:
    from locust.argument_parser import LocustArgumentParser

    from seed.coordination.options import add_arguments

    parser = LocustArgumentParser(prog="kanta-seed", add_help=False, usage=argparse_usage())
    add_arguments(parser)
    text = parser.format_help().replace(
        "options:", "kanta-seed options (also in the web UI's start form):", 1
    )
    return text + LOCUST_DEFAULTS


# Locust's own options whose meaning or default kanta-seed sets; Locust's help below cannot say so.
LOCUST_DEFAULTS = """
Locust options as kanta-seed uses them:
  -H, --host URL        Kanta's base URL, with or without a path prefix such as /api/v1
                        (default: http://localhost:8000)
  -u, --users N         concurrent uploads (the old script's --batch-size; default: 1 headless)
  -r, --spawn-rate R    users started per second (default: 1 headless)
  --stop-timeout S      seconds uploads in flight get to finish on a stop (default: 10, not
                        Locust's "terminate immediately")
  --web-host HOST       where the web UI listens (default: 127.0.0.1, not Locust's '*'; add
                        --web-login before opening it wider)

exit codes: 0 every image where it should be, exactly once; 1 not every image (failed, lost,
stopped, extra or missing copies); 2 bad input, nothing sent; 3 a check or the baseline failed

kanta-seed make-event OUT --photos N [--images ZIP] [--faces 2-6] [--size 3000x2000] [--seed S]
                        compose N event-like group photos from a face data set into OUT, with
                        OUT/ground-truth.json; then seed them with --images OUT (make-event --help)
"""


def argparse_usage() -> str:
    return "kanta-seed [Locust options] [kanta-seed options]"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [MAKE_EVENT]:
        from seed.core.event_photos import main as make_event  # Pillow only for this command

        return make_event(args[1:])
    if "-h" in args or "--help" in args:
        print(options_help())
        print("Locust's own options follow.\n")
    if "-V" in args or "--version" in args:
        from seed import __version__

        print(f"kanta-seed {__version__}")  # Locust's own version line follows
    if not any(a in ("-f", "--locustfile") or a.startswith("--locustfile=") for a in args):
        args = ["-f", str(LOCUSTFILE), *args]
    sys.argv = ["kanta-seed", *args]
    from locust.main import main as locust_main

    return locust_main()


if __name__ == "__main__":
    sys.exit(main())
