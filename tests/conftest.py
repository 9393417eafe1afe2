"""Helpers shared by the unit and end-to-end tests."""

from __future__ import annotations

from pathlib import Path


def shared_dir() -> Path:
    """Return the folder of fixtures and real-mail corpus beside the repo.

    The folder lives next to the repository checkout, not inside it, so
    callers must skip their tests when it does not exist.
    """
    return (Path(__file__).resolve().parents[1] / ".." / "shared").resolve()
