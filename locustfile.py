"""kanta-seed: seed a Kanta event with face images, each exactly once, as a Locust upload benchmark.

    locust --headless -u 5 -r 1 --standin                   # try it on the built-in stand-in
    locust --headless -u 5 -r 1 -H http://localhost:8000    # seed a real Kanta stack

See README.md for every option.
"""

from seed.glue import lifecycle  # noqa: F401  (registers the options and run hooks with Locust)
from seed.glue.users import KantaUploader

__all__ = ["KantaUploader"]
