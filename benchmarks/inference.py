"""Generator inference speed: torch eager vs onnxruntime (generic, baked, fp16, int8), one table.

python benchmarks/inference.py [--configs small,medium,warp_small,warp] [--paper] [--threads N]
                               [--budget 1.5] [--profile] [--json results.json]

For each model config (random weights: speed does not depend on their values) it runs
``export_checkpoint`` with an identity pack (bounds relaxed: this measures, it does not gate; the
measured parity/SSIM is still printed), then times, at batch 1 and 8, the median latency of:

- torch eager, generic generator (raster + embedding) and baked (raster only, psi constant)
- onnxruntime CPU fp32 generic / baked, fp16 baked, int8 baked (QDQ)
- onnxruntime CUDA fp32 / fp16 (generic and baked), when a CUDA provider really runs

Warp-conditioned configs (``warp_*``, ``warp``: models/warpgen.py) are exported by
``export_checkpoint`` (the same pipeline) and timed the same way on (raster, warped) inputs; their target is the
per-frame network at >= 25 frames/s (ORT CPU fp32 baked) at 256².

All ratios come from this one run. Torch and onnxruntime use the same thread count, and neither
busy-waits between calls (OMP_WAIT_POLICY=PASSIVE for torch, session.intra_op.allow_spinning=0 for
onnxruntime): cases are timed in interleaved rounds, and a spinning pool of one would steal the
cores of the other (on a 2-core box that made torch eager 70x slower and ORT 2x slower). A big Conv
run through onnxruntime (and a numpy matmul) gives this CPU's convolution peak in GFLOP/s, and the
table shows each ORT row's achieved GFLOP/s against it. ``--profile`` adds onnxruntime's per-op
profile (top op types) of the baked fp32 generator at batch 8.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported (see the docstring)

import numpy as np  # noqa: E402


def timeit(fn, budget: float, min_iters: int = 5, warmup: int = 2) -> float:  # for the peak
    """Median seconds per call over at least ``min_iters`` calls or ``budget`` seconds."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_iters or (time.perf_counter() - start < budget and len(times) < 200):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_interleaved(fns: dict, budget: float, min_rounds: int = 5, warmup: int = 2) -> dict:
    """Median seconds per call of each fn, timed in interleaved rounds (one call of each per round),
    so that load from other processes falls on all of them alike; about ``budget`` s per fn."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    start, rounds = time.perf_counter(), 0
    while rounds < min_rounds or (time.perf_counter() - start < budget * len(fns) and rounds < 300):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
        rounds += 1
    return {k: statistics.median(v) for k, v in times.items()}


def ort_session(path, threads: int, provider: str = "CPUExecutionProvider", profile_prefix=None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_prefix)
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    sess = ort.InferenceSession(str(path), opts, providers=providers)
    if sess.get_providers()[0] != provider:
        return None
    return sess


def conv_peak(threads: int, budget: float) -> dict:
    """GFLOP/s of one large 3x3 Conv through onnxruntime, and of a numpy float32 matmul."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n, c, s = 8, 256, 32
    w = np.random.default_rng(0).standard_normal((c, c, 3, 3)).astype(np.float32) * 0.01
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "peak",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, s, s])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, c, s, s])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(model, f"{tmp}/peak.onnx")
        sess = ort_session(f"{tmp}/peak.onnx", threads)
        x = np.random.default_rng(1).standard_normal((n, c, s, s)).astype(np.float32)
        t = timeit(lambda: sess.run(None, {"x": x}), budget)
    conv = 2 * n * c * c * 9 * s * s / t / 1e9
    a = np.random.default_rng(2).standard_normal((2048, 2048)).astype(np.float32)
    tm = timeit(lambda: a @ a, budget)
    return {"conv_gflops": conv, "matmul_gflops": 2 * 2048**3 / tm / 1e9}


def model_flops(module, inputs) -> float:
    """FLOPs of one forward (per batch given): convolutions and attention matmuls."""
    import torch

    from monalisa.models.layers import SelfAttention

    total = [0.0]

    def conv_hook(m, _inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        total[0] += 2 * (m.in_channels // m.groups) * k * out.numel()

    def attn_hook(m, inp, _out):
        b, c, h, w = inp[0].shape
        total[0] += 2 * b * (h * w) ** 2 * (m.key_dim + c)

    hooks = []
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, SelfAttention):
            hooks.append(m.register_forward_hook(attn_hook))
    with torch.no_grad():
        module(*inputs)
    for h in hooks:
        h.remove()
    return total[0]


def profile_top_ops(path, feed, threads: int, top: int = 8) -> list:
    """Run ORT profiling on ``path`` and return [(op_type, total ms, share)] sorted by time."""
    with tempfile.TemporaryDirectory() as tmp:
        sess = ort_session(path, threads, profile_prefix=Path(tmp) / "ort")
        for _ in range(10):
            sess.run(None, feed)
        trace = json.loads(Path(sess.end_profiling()).read_text())
    per_op = {}
    for ev in trace:
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            op = ev.get("args", {}).get("op_name", "?")
            per_op[op] = per_op.get(op, 0.0) + ev.get("dur", 0) / 1e3
    total = sum(per_op.values()) or 1.0
    return [(op, ms / 10, ms / total) for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])[:top]]


def timed_rows(name, batch, fns, sessions, budget, flops_per_img, feed) -> list:
    """Time the torch ``fns`` and each started ORT session (fed ``feed(label)``) in interleaved
    rounds -> one table row per backend."""
    import torch

    for label, sess in sessions.items():
        if sess is not None:
            fns[label] = lambda sess=sess, f=feed(label): sess.run(None, f)
    with torch.inference_mode():
        medians = time_interleaved(fns, budget)
    return [{"config": name, "batch": batch, "backend": label, "ms": sec * 1e3, "img_s": batch / sec,
             "gflops": flops_per_img * batch / sec / 1e9} for label, sec in medians.items()]


def bench_config(name: str, threads: int, budget: float, work: Path, do_profile: bool, calibration=None) -> dict:
    import onnxruntime as ort
    import torch

    from monalisa.export.onnx import build_graphs
    from monalisa.export.pipeline import Bounds, export_checkpoint
    from monalisa.export.verify import load_real_inputs
    from monalisa.models.checkpoint import crop_geometry, load_checkpoint, save_checkpoint
    from monalisa.models.config import get_config
    from monalisa.models.discriminator import Discriminator
    from monalisa.models.embedder import Embedder
    from monalisa.models.generator import Generator
    from monalisa.models.identity import load_identity, save_identity

    torch.manual_seed(0)
    cfg = get_config(name)
    gen = Generator(cfg)
    save_checkpoint(work / f"{name}.ckpt", Embedder(cfg), gen, Discriminator(cfg), cfg, 0)
    ckpt = load_checkpoint(work / f"{name}.ckpt")
    gen.eval()
    emb = torch.rand(1, cfg.embed_dim)
    with torch.no_grad():
        psi = gen.project(emb)
    save_identity(work / f"{name}.pack", gen, psi, emb, {"name": "bench", "base_checkpoint_sha256": ckpt.sha256})
    out = work / f"{name}.onnx"
    t0 = time.perf_counter()
    result = export_checkpoint(ckpt.path, out, identity=work / f"{name}.pack", fp16=True, int8=True,
                               calibration=calibration,
                               bounds=Bounds(fp32=float("inf"), fp16=float("inf"), int8_ssim=-1.0),
                               progress=lambda m: None)
    export_s = time.perf_counter() - t0
    checks = {f.name: (f.metric, f.value) for f in result.files}

    graphs = build_graphs(ckpt, load_identity(work / f"{name}.pack"))
    real = load_real_inputs(calibration, crop_geometry(ckpt))
    e = np.repeat(emb.numpy(), 8, axis=0)
    rows = []
    flops_per_img = model_flops(graphs["baked_generator"], (torch.from_numpy(real.rasters[:1]),))

    torch.set_num_threads(threads)
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    cases = [("ORT CPU fp32 generic", "generator.onnx", "CPUExecutionProvider"),
             ("ORT CPU fp32 baked", "baked_generator.onnx", "CPUExecutionProvider"),
             ("ORT CPU fp16 baked", "baked_generator.fp16.onnx", "CPUExecutionProvider"),
             ("ORT CPU int8 generic", "generator.int8.onnx", "CPUExecutionProvider"),
             ("ORT CPU int8 baked", "baked_generator.int8.onnx", "CPUExecutionProvider")]
    if cuda:
        cases += [(f"ORT CUDA {p} {kind}", f"{'generator' if kind == 'generic' else 'baked_generator'}"
                   f"{'' if p == 'fp32' else '.fp16'}.onnx", "CUDAExecutionProvider")
                  for p in ("fp32", "fp16") for kind in ("generic", "baked")]
    sessions = {}
    for label, fname, provider in cases:
        sess = ort_session(out / fname, threads, provider) if (out / fname).exists() else None
        if sess is not None:
            sessions[label] = sess
        elif provider != "CPUExecutionProvider":
            print(f"  ({label}: the CUDA provider did not start; row left out)")
    for batch in (1, 8):
        r = np.ascontiguousarray(np.resize(real.rasters, (batch, *real.rasters.shape[1:])))
        rt, et = torch.from_numpy(r), torch.from_numpy(e[:batch])
        fns = {"torch eager generic": lambda: graphs["generator"](rt, et),
               "torch eager baked": lambda: graphs["baked_generator"](rt)}
        rows += timed_rows(name, batch, fns, sessions, budget, flops_per_img,
                           lambda label: {"raster": r, **({"embedding": e[:batch]} if "generic" in label else {})})
    prof = []
    if do_profile:
        r8 = np.ascontiguousarray(np.resize(real.rasters, (8, *real.rasters.shape[1:])))
        prof = profile_top_ops(out / "baked_generator.onnx", {"raster": r8}, threads)
    return {"config": name, "resolution": cfg.resolution, "export_s": export_s, "checks": checks, "rows": rows,
            "gflop_per_image": flops_per_img / 1e9, "profile": prof}


def bench_warp_config(name: str, threads: int, budget: float, work: Path, calibration=None) -> dict:
    """bench_config for a warp-conditioned generator: generic and baked, torch eager and ORT (fp32, fp16)."""
    import onnxruntime as ort
    import torch

    from monalisa.export.onnx import build_graphs
    from monalisa.export.pipeline import Bounds, export_checkpoint
    from monalisa.export.verify import load_real_inputs
    from monalisa.models.checkpoint import crop_geometry, load_checkpoint, save_checkpoint
    from monalisa.models.config import get_config
    from monalisa.models.identity import load_identity, save_identity
    from monalisa.models.checkpoint import build_networks

    torch.manual_seed(0)
    cfg = get_config(name)
    E, G, D = build_networks(cfg)
    with torch.no_grad():
        G.to_correction.weight.normal_(0, 0.02)  # a live correction head (speed does not depend on values)
    save_checkpoint(work / f"{name}.ckpt", E, G, D, cfg, 0)
    ckpt = load_checkpoint(work / f"{name}.ckpt")
    emb = torch.rand(1, cfg.embed_dim)
    with torch.no_grad():
        psi = G.eval().project(emb)
    save_identity(work / f"{name}.pack", G, psi, emb, {"name": "bench", "base_checkpoint_sha256": ckpt.sha256})
    out = work / f"{name}.onnx"
    t0 = time.perf_counter()
    result = export_checkpoint(ckpt.path, out, identity=work / f"{name}.pack", fp16=True, calibration=calibration,
                               bounds=Bounds(fp32=float("inf"), fp16=float("inf")), progress=lambda m: None)
    export_s = time.perf_counter() - t0
    checks = {f.name: (f.metric, f.value) for f in result.files}
    graphs = build_graphs(ckpt, load_identity(work / f"{name}.pack"))
    real = load_real_inputs(calibration, crop_geometry(ckpt))
    e = np.repeat(emb.numpy(), 8, axis=0)
    flops_per_img = model_flops(graphs["baked_warp_generator"], (torch.from_numpy(real.rasters[:1]),
                                                                 torch.from_numpy(real.images[:1])))
    torch.set_num_threads(threads)
    cases = [("ORT CPU fp32 generic", "warp_generator.onnx", "CPUExecutionProvider"),
             ("ORT CPU fp32 baked", "baked_warp_generator.onnx", "CPUExecutionProvider"),
             ("ORT CPU fp16 baked", "baked_warp_generator.fp16.onnx", "CPUExecutionProvider")]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        cases += [(f"ORT CUDA {p} baked", f"baked_warp_generator{'' if p == 'fp32' else '.fp16'}.onnx",
                   "CUDAExecutionProvider") for p in ("fp32", "fp16")]
    sessions = {label: ort_session(out / f, threads, prov) for label, f, prov in cases if (out / f).exists()}
    rows = []
    for batch in (1, 8):
        r = np.ascontiguousarray(np.resize(real.rasters, (batch, *real.rasters.shape[1:])))
        w = np.ascontiguousarray(np.resize(real.images, (batch, *real.images.shape[1:])))
        rt, wt, et = torch.from_numpy(r), torch.from_numpy(w), torch.from_numpy(e[:batch])
        fns = {"torch eager generic": lambda: graphs["warp_generator"](rt, wt, et),
               "torch eager baked": lambda: graphs["baked_warp_generator"](rt, wt)}
        rows += timed_rows(name, batch, fns, sessions, budget, flops_per_img,
                           lambda label: {"raster": r, "warped": w,
                                          **({"embedding": e[:batch]} if "generic" in label else {})})
    return {"config": name, "resolution": cfg.resolution, "export_s": export_s, "checks": checks, "rows": rows,
            "gflop_per_image": flops_per_img / 1e9, "profile": [], "warp": True}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="small,medium,warp_small,warp",
                    help="comma-separated presets (default small,medium,warp_small,warp)")
    ap.add_argument("--paper", action="store_true", help="also the paper config (slow on a CPU)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="threads for torch and ORT")
    ap.add_argument("--budget", type=float, default=1.5, help="seconds of timing per cell (default 1.5)")
    ap.add_argument("--profile", action="store_true", help="ORT per-op profile of the baked generator")
    ap.add_argument("--calibration", help="real inputs .npz (default: the bundled calibration set)")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args(argv)

    import onnxruntime as ort
    import torch

    import monalisa

    configs = [c for c in a.configs.split(",") if c] + (["paper"] if a.paper else [])
    t_start = time.perf_counter()
    load = os.getloadavg()
    print(f"monalisa {monalisa.__version__}, torch {torch.__version__}, onnxruntime {ort.__version__} "
          f"({', '.join(ort.get_available_providers())}), {platform.processor() or platform.machine()}, "
          f"{a.threads} threads, load average {load[0]:.1f}")
    peak = conv_peak(a.threads, a.budget)
    print(f"CPU peak: ORT 3x3 Conv 8x256x32x32 {peak['conv_gflops']:.1f} GFLOP/s; "
          f"numpy matmul 2048^2 {peak['matmul_gflops']:.1f} GFLOP/s")
    results = []
    with tempfile.TemporaryDirectory(prefix="monalisa-bench-") as tmp:
        from monalisa.models.config import get_config

        for name in configs:
            if get_config(name).generator == "warp":
                results.append(bench_warp_config(name, a.threads, a.budget, Path(tmp), a.calibration))
            else:
                results.append(bench_config(name, a.threads, a.budget, Path(tmp), a.profile, a.calibration))

    print()
    print("| config | batch | backend | median ms | img/s | × torch eager | × ORT CPU fp32 | GFLOP/s | peak / achieved |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for res in results:
        base = {(r["batch"], r["backend"]): r["ms"] for r in res["rows"]}
        for row in res["rows"]:
            kind = "generic" if "generic" in row["backend"] else "baked"
            vs_torch = base[(row["batch"], f"torch eager {kind}")] / row["ms"]
            vs_ort = base.get((row["batch"], f"ORT CPU fp32 {kind}"), float("nan")) / row["ms"]
            cpu = row["backend"].startswith("ORT CPU")
            peak_ratio = f"{peak['conv_gflops'] / row['gflops']:.1f}×" if cpu else ""
            print(f"| {row['config']} | {row['batch']} | {row['backend']} | {row['ms']:.2f} | {row['img_s']:.1f} | "
                  f"{vs_torch:.2f} | {vs_ort:.2f} | {row['gflops']:.1f} | {peak_ratio} |")
            summary[(res["config"], row["batch"], row["backend"])] = row
    print()
    for res in results:
        checks = ", ".join(f"{k} {m} {v:.3g}" for k, (m, v) in res["checks"].items())
        print(f"{res['config']} ({res['resolution']}px, {res['gflop_per_image']:.2f} GFLOP/image): export "
              f"{res['export_s']:.1f} s; measured on real inputs: {checks}")
    print()
    print("targets:")
    for res in results:
        c = res["config"]

        def ms(b, k):
            return summary.get((c, b, k), {}).get("ms", float("nan"))

        if res.get("warp"):
            for b in (1, 8):
                fps = 1e3 * b / ms(b, "ORT CPU fp32 baked")
                goal = ("the goal is at 256²" if res["resolution"] < 256
                        else f"≥25 at 256² {'met' if fps >= 25 else 'MISSED'}")
                print(f"  {c} b{b} ({res['resolution']}² per-frame network): ORT CPU fp32 baked {fps:.0f} frames/s "
                      f"({goal}); ORT/torch {ms(b, 'torch eager baked') / ms(b, 'ORT CPU fp32 baked'):.2f}×")
            continue
        for b in (1, 8):
            t1 = ms(b, "torch eager generic") / ms(b, "ORT CPU fp32 generic")
            t2 = ms(b, "ORT CPU fp32 generic") / ms(b, "ORT CPU fp32 baked")
            t3 = peak["conv_gflops"] / summary.get((c, b, "ORT CPU fp32 baked"), {}).get("gflops", float("nan"))
            t4 = ms(b, "ORT CPU fp32 baked") / ms(b, "ORT CPU int8 baked")
            print(f"  {c} b{b}: ORT/torch {t1:.2f}× (≥1.5 {'met' if t1 >= 1.5 else 'MISSED'}); baked/generic "
                  f"{t2:.3f}× (≥1.05 {'met' if t2 >= 1.05 else 'MISSED'}); peak/ORT {t3:.1f}× (≤1.5 "
                  f"{'met' if t3 <= 1.5 else 'MISSED'}); int8/fp32 {t4:.2f}× (≥2 {'met' if t4 >= 2 else 'MISSED'})")
        if res["profile"]:
            top = "; ".join(f"{op} {ms_:.2f} ms ({share:.0%})" for op, ms_, share in res["profile"])
            print(f"  {c} ORT profile, baked fp32 b8, per run: {top}")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    if a.json:
        Path(a.json).write_text(json.dumps({"peak": peak, "threads": a.threads, "load_average": load,
                                            "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__,
                                                         "monalisa": monalisa.__version__},
                                            "results": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
