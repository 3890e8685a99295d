"""Shared fixtures. Real data lives in ../shared/data beside the checkout (or $MONALISA_SHARED_DATA);
tests that need it skip cleanly when it is absent.

torch runs single-threaded in the test session (and in the subprocesses tests start): on a loaded
2-core box torch's default thread pool made the two slowest tests 18x and 26x slower.
$MONALISA_TEST_THREADS sets another count.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
THREADS = os.environ.get("MONALISA_TEST_THREADS", "1")


def pytest_configure(config):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = THREADS  # read by torch, numpy and onnxruntime in subprocesses too
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(int(THREADS))


@pytest.fixture
def free_port() -> int:
    """A TCP port nobody listens on now (for torchrun's rendezvous), chosen at run time."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
