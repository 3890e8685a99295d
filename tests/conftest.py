"""Shared fixtures. Real data lives in ../shared/data beside the checkout (or $MONALISA_SHARED_DATA);
tests that need it skip cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("MONALISA_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; skips the test when it is absent."""
    root = shared_data_dir()
    if not (root / "MANIFEST.tsv").is_file():
        pytest.skip(f"real data not found at {root}")
    return root


@pytest.fixture(scope="session")
def shared_file(shared_data):
    """shared_file('clips/x.mp4') -> Path, skipping the test when that file is absent."""

    def get(relative: str) -> Path:
        path = shared_data / relative
        if not path.is_file():
            pytest.skip(f"real data file not found: {path}")
        return path

    return get
