"""``python -m changedetect``: the same as the ``changedetect`` command."""

from changedetect.cli import main

main()
