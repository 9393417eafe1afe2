"""Fixtures for the deployment files: a local moto server and paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.aws_endpoint import MotoServer

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(autouse=True)
def _no_metadata_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3 must not query the instance metadata address for credentials.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on 127.0.0.1 of its own for the test module."""
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log, MotoServer(log=log) as server:
        yield server.url
