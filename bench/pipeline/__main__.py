"""``python -m bench.pipeline``."""

from bench.pipeline.cli import main

main()
