#!/usr/bin/env python3
"""Build the deck: `python build.py` (see `python build.py --help`). The engine lives in ankideck/."""
import sys

SETUP = ("  python3 -m venv .venv && .venv/bin/pip install -e .\n"
         "then run: .venv/bin/python build.py")


def missing_packages() -> list[str]:
    """The project's own requirements (not its extras) that this Python lacks."""
    try:
        from ankideck.installed import missing_requirements  # standard library only
    except ImportError:
        return ["the ankideck project"]
    return missing_requirements("ankideck")


if missing := missing_packages():
    sys.exit(f"Error: {', '.join(missing)} not installed for {sys.executable}. Set up once with:\n{SETUP}")

from ankideck.cli import main  # noqa: E402  (after the check: the engine imports what may be missing)

if __name__ == "__main__":
    main()
