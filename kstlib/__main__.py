"""``python -m kstlib``: the same as the ``kstlib`` console script."""

from kstlib.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
