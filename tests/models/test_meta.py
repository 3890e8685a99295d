import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from monalisa.cli import main
from monalisa.models.checkpoint import load_checkpoint
from monalisa.models.config import ModelConfig, OptimConfig
from monalisa.models.data import PreparedData, episode_batch
from monalisa.models.meta import MetaLearner, TrainConfig, train
from monalisa.models.prepare import PrepareOptions, prepare

CLIPS = sorted((Path(__file__).resolve().parents[2] / "assets" / "clips").glob("*.mp4"))
TINY = ModelConfig(resolution=32, base_width=8, max_width=32, embed_dim=16, num_down=2,
                   num_res_blocks=1, attention_resolution=16, num_videos=2)
TINY_ARGS = dict(steps=4, batch_size=2, k=2, checkpoint_every=2, keep=5)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("meta") / "data"
    prepare(CLIPS, out, PrepareOptions(size=64, every=4, max_frames=8), progress=False)
    return out


def losses(run):
    with open(run / "losses.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_one_episode_overfits(data):
    torch.manual_seed(0)
    learner = MetaLearner(TINY, TrainConfig(optim=OptimConfig(lr_eg=2e-3, lr_d=2e-3)))
    batch = episode_batch(PreparedData(data), 0, 2, 2, 32)
    first = [learner.step(batch)["content"] for _ in range(3)]
    for _ in range(57):
        last = learner.step(batch)["content"]
    # the content loss (L1 + 1 - MS-SSIM) on one fixed episode falls at least 2.5x in 60 steps
    assert last < first[0] / 2.5, (first, last)


def test_resume_continues_with_identical_losses(data, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(data, straight, TINY, TrainConfig(**TINY_ARGS), device="cpu", progress=False)
    train(data, split, TINY, TrainConfig(**{**TINY_ARGS, "steps": 2}), device="cpu", progress=False)
    result = train(data, split, TINY, TrainConfig(**TINY_ARGS), device="cpu", progress=False)
    assert result["step"] == 4
    a, b = losses(straight), losses(split)
    assert [r["step"] for r in b] == ["1", "2", "3", "4"]
    assert a == b  # every logged loss of steps 3 and 4 equal to the last printed digit
    wa = load_checkpoint(straight / "checkpoints" / "step_0000004").state
    wb = load_checkpoint(split / "checkpoints" / "step_0000004").state
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_checkpoint_of_another_config_is_refused(data, tmp_path, capsys):
    run = tmp_path / "run"
    train(data, run, TINY, TrainConfig(**{**TINY_ARGS, "steps": 2}), device="cpu", progress=False)
    assert main(["train", "--data", str(data), "--out", str(run), "--config", "small", "--steps", "3", "--k", "2"]) == 2
    err = capsys.readouterr().err
    assert "step_0000002: config differs" in err and len(err.strip().splitlines()) == 1


def test_k0_is_refused(data, tmp_path, capsys):
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--k", "0"]) == 2
    err = capsys.readouterr().err
    assert "argument --k: 0 is out of range: use a whole number from 1 to 64" in err and err.count("\n") == 1


def test_ddp_two_processes_equal_one_process_on_both_batches(data, tmp_path, free_port):
    """torchrun, 2 CPU processes on gloo: one DDP step equals one step on both ranks' episodes."""
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = ("from monalisa.models.meta import train, TrainConfig; from monalisa.models.config import ModelConfig\n"
            f"train({str(data)!r}, {str(run)!r}, ModelConfig(**{TINY.to_dict()!r}),"
            " TrainConfig(steps=1, batch_size=1, k=2, checkpoint_every=1), device='cpu', progress=False)\n")
    script = tmp_path / "ddp_step.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--master-port", str(free_port), str(script)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = load_checkpoint(run / "checkpoints" / "step_0000001")

    torch.manual_seed(0)  # train() seeds with TrainConfig.seed before building the networks
    learner = MetaLearner(TINY, TrainConfig(steps=1, batch_size=1, k=2))
    prepared = PreparedData(data)
    both = [episode_batch(prepared, 0, 1, 2, 32, seed=0, rank=r) for r in (0, 1)]
    learner.step({k: torch.cat([b[k] for b in both]) for k in both[0]})
    # Adam with beta1 = 0 stores the step's gradient as exp_avg: DDP's all-reduced gradients must
    # equal the single process's on the union of both ranks' episodes
    compared = 0
    for name, opt in learner.optimizers.items():
        for idx, st in opt.state_dict()["state"].items():
            ddp_grad = ckpt.training[f"{name}.state.{idx}.exp_avg"]
            assert torch.allclose(ddp_grad, st["exp_avg"], rtol=1e-3, atol=1e-6), (name, idx)
            compared += 1
    assert compared == len(list(learner.E.parameters())) + len(list(learner.G.parameters())) + len(
        list(learner.D.parameters()))
    moved = [k for k, v in _initial().items() if not torch.equal(ckpt.state[k], v)]
    assert len(moved) > 10  # the step changed the weights


def _initial():
    from monalisa.models.discriminator import Discriminator
    from monalisa.models.embedder import Embedder
    from monalisa.models.generator import Generator

    torch.manual_seed(0)
    return {f"{p}.{k}": v for p, net in zip(("embedder", "generator", "discriminator"),
                                            (Embedder(TINY), Generator(TINY), Discriminator(TINY)))
            for k, v in net.state_dict().items()}


def test_old_checkpoints_are_pruned_and_the_crop_recorded(data, tmp_path):
    run = tmp_path / "run"
    train(data, run, TINY, TrainConfig(steps=4, batch_size=1, k=2, checkpoint_every=1, keep=2),
          device="cpu", progress=False)
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == ["step_0000003", "step_0000004"]
    assert all((run / "checkpoints" / k / "preview.png").is_file() for k in kept)
    ckpt = load_checkpoint(run / "checkpoints" / "step_0000004")
    assert ckpt.meta["crop"] == {"resolution": 32, "prepare_size": 64, "margin": 0.15, "filter": "area"}
    assert len(losses(run)) == 4


def test_train_reference_writes_compact_weights_and_spares_a_users_folder(data, tmp_path, capsys):
    user = tmp_path / "shot"
    user.mkdir()
    (user / "comp.nk").write_text("comp")
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "1", "--batch", "1",
            "--k", "2", "--threads", "1", "--reference"]
    assert main([*args, str(user)]) == 2
    err = capsys.readouterr().err
    assert "comp.nk" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before any work
    assert main([*args, str(tmp_path / "ref")]) == 0
    ref = load_checkpoint(tmp_path / "ref")
    full = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_0000001")
    assert ref.training is None and not (tmp_path / "ref" / "training.safetensors").exists()
    assert all(v.dtype == torch.float16 for v in ref.state.values() if v.is_floating_point())
    assert ref.meta["source_checkpoint_sha256"] == full.sha256 and ref.meta["crop"] == full.meta["crop"]
    assert all(torch.allclose(ref.state[k].float(), full.state[k], atol=1e-2, rtol=1e-2) for k in full.state)
    assert main([*args, str(user), "--overwrite"]) == 0  # beside the user's files, which stay
    assert (user / "comp.nk").read_text() == "comp" and (user / "model.safetensors").is_file()


def test_k_above_the_shortest_clip_is_refused_before_work(data, tmp_path, capsys):
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--k", "8", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "--k 8: clip" in err and "has only 8 frames" in err and "use --k 7 or less" in err
    assert not (tmp_path / "r").exists()


def test_rerun_removes_the_temporaries_of_a_killed_run(data, tmp_path):
    import socket

    run = tmp_path / "run"
    train(data, run, TINY, TrainConfig(steps=1, batch_size=1, k=2), device="cpu", progress=False)
    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True).stdout)
    stale = run / "checkpoints" / f".step_0000002.~{pid}@{socket.gethostname()}~x.tmp"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    result = train(data, run, TINY, TrainConfig(steps=2, batch_size=1, k=2), device="cpu", progress=False)
    assert result["step"] == 2 and not stale.exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000001", "step_0000002"]
