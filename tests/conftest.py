"""Helpers shared by the unit and end-to-end tests."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_VARIABLE = "SHARED_DATA_DIR"


def shared_dir() -> Path:
    """Return the folder of fixtures and real-mail corpus.

    It is $SHARED_DATA_DIR when set, else ``shared`` beside the
    repository checkout.  It is not part of the repository, so callers
    skip their tests when it does not exist.
    """
    configured = os.environ.get(DATA_DIR_VARIABLE)
    if configured:
        return Path(configured).resolve()
    return (Path(__file__).resolve().parents[1] / ".." / "shared").resolve()


def pytest_report_header() -> str:
    folder = shared_dir()
    state = "found" if folder.is_dir() else (
        f"NOT FOUND: tests that need it are skipped; set "
        f"{DATA_DIR_VARIABLE} to its path")
    return f"fixtures and mail corpus: {folder} ({state})"
