"""Command-line tools built on the library (not DVC stages): python -m tools.<name>."""
