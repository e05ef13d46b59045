#!/usr/bin/env python3
"""Build the deck: `python build.py` (see `python build.py --help`). The engine lives in ankideck/."""
from ankideck.cli import main

if __name__ == "__main__":
    main()
