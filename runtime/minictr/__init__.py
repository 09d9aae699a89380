"""minictr: a small, fast, rootless container engine with Docker's API."""

__version__ = "0.1.0"
API_VERSION = "1.43"
MIN_API_VERSION = "1.24"
