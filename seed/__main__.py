"""``kanta-seed`` (or ``python -m seed``): Locust with kanta-seed's locustfile, from any folder.

``kanta-seed --headless -u 5 -r 1 --standin`` is ``locust -f <kanta-seed's locustfile> --headless ...``.
``kanta-seed --help`` lists kanta-seed's own options after Locust's: Locust 2.47 prints ``--help``
before it reads a locustfile, so ``locust --help`` never shows them.
"""

from __future__ import annotations

import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def options_help() -> str:
    from locust.argument_parser import LocustArgumentParser

    from .options import add_arguments

    parser = LocustArgumentParser(prog="kanta-seed", add_help=False, usage=argparse_usage())
    add_arguments(parser)
    return parser.format_help().replace(
        "options:", "kanta-seed options (also in the web UI's start form):", 1
    )


def argparse_usage() -> str:
    return "kanta-seed [Locust options] [kanta-seed options]"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(options_help())
        print("Locust's own options follow.\n")
    if not any(a in ("-f", "--locustfile") or a.startswith("--locustfile=") for a in args):
        args = ["-f", str(LOCUSTFILE), *args]
    sys.argv = ["kanta-seed", *args]
    from locust.main import main as locust_main

    return locust_main()


if __name__ == "__main__":
    sys.exit(main())
