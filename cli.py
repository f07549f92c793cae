"""Thin shim so that ``python cli.py ...`` works from a checkout."""

from changedetect.cli import main

if __name__ == "__main__":
    main()
