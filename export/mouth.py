"""Export the mouth-interior network (``models.mouth``) to the ONNX file the node runs.

  python -m monalisa.export.mouth runs/mouth --out monalisa/weights/mouth

Reads TRAIN_DIR/model.safetensors + mouth.json (``models.mouth_train``), writes OUT/onnx/mouth.onnx with
the ``monalisa.*`` metadata ``nodes.mouthmodel`` checks, OUT/model.safetensors and OUT/mouth.json
(the config and training record), then checks onnxruntime against torch on random patches
(``verify``: max abs difference, raised as ExportMismatchError beyond ``TOLERANCE``).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from monalisa import __version__
from monalisa.errors import CheckpointError, ExportMismatchError
from monalisa.files import sha256_file, write_json
from monalisa.models.mouth import MouthConfig, MouthNet
from monalisa.nodes import mouth as geometry
from monalisa.nodes.mouthmodel import ENCODING, FORMAT, FORMAT_VERSION, INPUTS, OUTPUTS

OPSET, TOLERANCE = 17, 1e-4


def load_trained(folder) -> tuple:
    """(MouthNet in eval mode, its mouth.json record, the weights' sha256)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "mouth.json").is_file() or not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"{folder}: no mouth.json + model.safetensors; train one with "
                              "python -m monalisa.models.mouth_train")
    record = json.loads((folder / "mouth.json").read_text())
    net = MouthNet(MouthConfig.from_dict(record["config"]))
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    return net.eval(), record, sha256_file(folder / "model.safetensors")


def metadata(cfg: MouthConfig, checkpoint_sha256: str) -> dict:
    return {"monalisa.format": FORMAT, "monalisa.format_version": str(FORMAT_VERSION),
            "monalisa.resolution": str(cfg.resolution), "monalisa.mouth_width": str(geometry.WIDTH),
            "monalisa.inputs": json.dumps(list(INPUTS)), "monalisa.outputs": json.dumps(list(OUTPUTS)),
            "monalisa.encoding": json.dumps(ENCODING), "monalisa.config": json.dumps(cfg.to_dict()),
            "monalisa.checkpoint_sha256": checkpoint_sha256, "monalisa.version": __version__}


def to_onnx(net: MouthNet, path, meta: dict) -> None:
    import onnx

    r = net.cfg.resolution
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.onnx.export(net, (torch.zeros(1, 4, r, r),), str(tmp), input_names=list(INPUTS), output_names=list(OUTPUTS),
                      dynamic_axes={"patch": {0: "batch"}, "interior": {0: "batch"}}, opset_version=OPSET, dynamo=False)
    model = onnx.load(str(tmp))
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp))
    tmp.replace(path)


def verify(net: MouthNet, path, batch: int = 3, seed: int = 0) -> float:
    """Max abs difference of onnxruntime vs torch on random patches with a hole."""
    from monalisa.nodes.mouthmodel import load_mouth_model

    r = net.cfg.resolution
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch, 4, r, r)).astype(np.float32)
    x[:, 3] = 0.0
    x[:, 3, r // 3:2 * r // 3, r // 4:3 * r // 4] = 1.0
    x[:, :3] *= 1.0 - x[:, 3:4]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = load_mouth_model(path).paint(x)
    diff = float(np.abs(got - want).max())
    if diff > TOLERANCE:
        raise ExportMismatchError(f"{path}: onnxruntime differs from torch by {diff:.2e} (> {TOLERANCE})")
    return diff


def export(train_dir, out) -> float:
    net, record, sha = load_trained(train_dir)
    out = Path(out)
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    to_onnx(net, out / "onnx" / "mouth.onnx", metadata(net.cfg, sha))
    if Path(train_dir).resolve() != out.resolve():
        shutil.copyfile(Path(train_dir) / "model.safetensors", out / "model.safetensors")
        write_json(out / "mouth.json", record)
    return verify(net, out / "onnx" / "mouth.onnx")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m monalisa.export.mouth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"mouth.onnx written; onnxruntime vs torch max abs difference {export(args.train_dir, args.out):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
