"""Fixtures of the nodes tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def host_core(tmp_path):
    """Run Python lines as Nuke and Blender do: plugin/core.py loaded by path (as ``core``) in a
    Python without site packages (-S -I: no monalisa, no numpy); -> its stdout lines."""
    def run(body: str) -> list[str]:
        script = tmp_path / "host.py"
        script.write_text(
            "import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('monalisa_plugin_core', {str(REPO / 'plugin' / 'core.py')!r})\n"
            "core = importlib.util.module_from_spec(spec); sys.modules[spec.name] = core; spec.loader.exec_module(core)\n"
            + body)
        r = subprocess.run([sys.executable, "-S", "-I", str(script)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()
    return run
