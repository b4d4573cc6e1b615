"""``python -m profiler`` runs the hfp command line."""

from profiler.cli import main

main()
