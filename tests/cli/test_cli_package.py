"""The package contract: one namespace, a torch-free runtime, a CLI that speaks in one line."""

import importlib.metadata
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from monalisa.cli import COMMANDS, main


def test_every_subcommand_has_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert name in capsys.readouterr().out


def test_unknown_subcommand_exits_2(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err.strip()
    assert "invalid choice" in err and "\n" not in err and err.startswith("monalisa: error: ")


def test_runtime_imports_leave_torch_out():
    code = (
        "import sys, pkgutil, importlib, monalisa.nodes, monalisa.plugin, monalisa.models.prepare\n"
        "for pkg in (monalisa.nodes, monalisa.plugin):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
        "import monalisa.cli\n"
        "monalisa.cli.build_parser()\n"
        "sys.exit(3 if 'torch' in sys.modules else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr or "importing the runtime pulled in torch"


@pytest.mark.parametrize("extra", ["", "cpu", "gpu"])
def test_runtime_install_does_not_pull_torch(extra):
    requirements = [Requirement(r) for r in importlib.metadata.requires("monalisa")]
    env = {"extra": extra}
    names = {r.name.lower() for r in requirements if r.marker is None or r.marker.evaluate(env)}
    assert "torch" not in names
    assert "numpy" in names


def test_cpu_and_gpu_extras_name_one_onnxruntime_each():
    requirements = [Requirement(r) for r in importlib.metadata.requires("monalisa")]
    for extra, wanted, unwanted in (("cpu", "onnxruntime", "onnxruntime-gpu"), ("gpu", "onnxruntime-gpu", "onnxruntime")):
        names = {r.name.lower() for r in requirements if r.marker is not None and r.marker.evaluate({"extra": extra})}
        assert wanted in names and unwanted not in names
