"""The locustfile inside the package, for ``kanta-seed`` / ``python -m seed`` (the top-level
locustfile.py is the same two lines, for plain ``locust`` run from the project folder)."""

from seed.glue import lifecycle  # noqa: F401  (registers the options and run hooks with Locust)
from seed.glue.users import KantaUploader

__all__ = ["KantaUploader"]
