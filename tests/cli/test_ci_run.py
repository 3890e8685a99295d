""".ci/run runs the README's contract blocks and fails when they fail, or when no test ran."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CI = Path(__file__).resolve().parents[2] / ".ci" / "run"


def _run(tmp_path, test_block):
    """.ci/run in a copy of the layout it expects (REPO/.ci/run, REPO/README.md) with these blocks."""
    (tmp_path / ".ci").mkdir()
    shutil.copy2(CI, tmp_path / ".ci" / "run")
    (tmp_path / "README.md").write_text("# r\n\n<!-- contract: setup -->\n```bash\ntrue\n```\n\n"
                                        f"<!-- contract: test -->\n```bash\n{test_block}\n```\n")
    return subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("block, code", [("exit 0", 0), ("exit 3", 3), ("exit 5", 1)])
def test_exit_status_follows_the_tests_and_no_tests_fails(tmp_path, block, code):
    done = _run(tmp_path, block)
    assert done.returncode == code, done.stdout + done.stderr
    if block == "exit 5":
        assert "collected no tests" in done.stderr


def test_a_pytest_that_collects_nothing_fails_ci(tmp_path):
    (tmp_path / "empty").mkdir()
    done = _run(tmp_path, f"{sys.executable} -m pytest -q -p no:cacheprovider empty")
    assert done.returncode == 1, done.stdout + done.stderr
