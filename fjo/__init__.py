"""fjo: the command line that composes the services (the only package that imports them all)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fjo")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
