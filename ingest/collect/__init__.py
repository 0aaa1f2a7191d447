"""Collecting: poll a source, map its pages (in a child process), backfill its history, check
that a closed window is complete, and show progress while doing it."""
