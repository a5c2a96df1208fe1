"""kanta-seed: seed the Kanta backend with face images as a Locust upload benchmark."""

__version__ = "0.1.0"
