"""One code style for the project's Python: ``ruff check`` with the settings in pyproject.toml's ``[tool.ruff]``."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

PATHS = ["ankideck", "figures", "build.py", "benchmarks", "tests"]


def test_ruff_finds_nothing():
    pytest.importorskip("ruff", reason="the test extra installs ruff")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                             *PATHS], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
