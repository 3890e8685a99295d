"""Drive every command with bad input and print a table: case | command | exit | time | first stderr line.

    OMP_NUM_THREADS=1 python benchmarks/bad_inputs.py [--only SUBSTRING] [--skip SUBSTRING] [--keep DIR]

Run it from the root of the checkout under test with that checkout's environment: the commands run
as ``python -m monalisa`` from the current folder. ``--skip 0-99999999999999`` on a checkout older
than the frame grammar (nodes/frames.py): that case exhausted the memory there.

A case passes the house rule when it exits 2 (user-fixable) or 1 (monalisa's failure) with one line
and no traceback, and, for the data-loss cases, when the user's files are still there afterwards.
Fixtures: the bundled clip, the reference checkpoint, a portrait from the shared data (or a frame
of the bundled clip), a tiny prepared folder made here.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "assets" / "clips" / "liveportrait_d0.mp4"
REF = REPO / "monalisa" / "weights" / "reference"
PY = sys.executable


def sh(args, env=None, timeout=600, interrupt_after=None):
    """Run ``python -m monalisa ARGS`` (or a python -c snippet when args[0] == '-c') -> (rc, stderr, secs)."""
    cmd = [PY, *args] if args[0] == "-c" else [PY, "-m", "monalisa", *args]
    t0 = time.perf_counter()
    # a background shell starts us with SIGINT ignored; give the child Python its Ctrl-C back
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if interrupt_after is not None:
        time.sleep(interrupt_after)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err, time.perf_counter() - t0


def said(err: str) -> list:
    """stderr's lines without log records and progress bars."""
    return [ln for ln in err.strip().splitlines() if ln.strip() and not ln.startswith(("INFO", "WARNING", "train:", "finetune:", "track:"))
            and "it/s]" not in ln and "s/it]" not in ln and "step/s]" not in ln and "frame/s]" not in ln]


def summary(err: str) -> str:
    lines = said(err)
    if any(ln.startswith("Traceback") for ln in err.splitlines()):
        n = len(err.strip().splitlines())
        return f"TRACEBACK ({n} lines): {lines[-1][:150] if lines else ''}"
    return (lines[-1] if lines else "(no message)")[:200]


def make_fixtures(root: Path) -> dict:
    import numpy as np

    f = {"root": root}
    user = root / "user_shot"
    (user / "renders").mkdir(parents=True)
    (user / "comp.nk").write_text("# a comp script\n")
    (user / "renders" / "beauty.0001.exr").write_bytes(b"\0" * 64)
    f["user"] = user
    f["file"] = root / "a_file.txt"
    f["file"].write_text("not a folder\n")
    portraits = Path(os.environ.get("MONALISA_SHARED_DATA", REPO.parent / "shared" / "data")) / "portraits"
    still = portraits / "liveportrait_s0.jpg"
    if not still.is_file():
        import cv2
        import av

        with av.open(str(CLIP)) as c:
            frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
        still = root / "still.png"
        cv2.imwrite(str(still), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    f["still"] = still
    prepared = root / "prepared"
    rc, err, _ = sh(["prepare", str(CLIP), "--out", str(prepared), "--size", "64", "--max-frames", "4"])
    assert rc == 0, err
    f["prepared"] = prepared
    # an mp4 with its index at the start, cut in half
    import av

    fast = root / "faststart.mp4"
    with av.open(str(CLIP)) as inp, av.open(str(fast), "w", format="mp4", options={"movflags": "faststart"}) as out:
        s_in = inp.streams.video[0]
        s = out.add_stream("libx264", rate=s_in.average_rate)
        s.width, s.height, s.pix_fmt = s_in.width, s_in.height, "yuv420p"
        for frame in inp.decode(video=0):
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    data = fast.read_bytes()
    f["cut"] = root / "cut.mp4"
    f["cut"].write_bytes(data[: len(data) // 2])
    bad_ckpt = root / "badckpt"
    bad_ckpt.mkdir()
    (bad_ckpt / "checkpoint.json").write_text("[1, 2, 3]\n")
    (bad_ckpt / "model.safetensors").write_bytes((REF / "model.safetensors").read_bytes())
    f["badckpt"] = bad_ckpt
    # track files
    good = {"format": "monalisa.track", "version": 1, "image_size": [256, 256], "provenance": {},
            "frames": [{"frame": i, "points": np.full((68, 2), 100.0 + i).tolist(), "confidence": None,
                        "filled": False} for i in range(3)]}

    def track(name, mutate):  # noqa: F811
        d = json.loads(json.dumps(good))
        mutate(d)
        p = root / name
        p.write_text(json.dumps(d))
        return p

    f["t_str"] = track("t_str.json", lambda d: d["frames"][1].__setitem__("points", [["a", "b"]] * 68))
    f["t_five"] = track("t_five.json", lambda d: d["frames"][1].__setitem__("points", 5))
    f["t_xyz"] = track("t_xyz.json", lambda d: d["frames"][1].__setitem__("points", [[1.0, 2.0, 3.0]] * 68))
    f["t_neg"] = track("t_neg.json", lambda d: [e.__setitem__("frame", e["frame"] - 5) for e in d["frames"]])
    f["t_dir"] = root / "t_dir.json"
    f["t_dir"].mkdir()
    f["csv_bin"] = root / "bin.csv"
    f["csv_bin"].write_bytes(bytes(range(256)) * 4)
    # issue 17: a track of the clip, an animated GIF, folders holding a user's files of monalisa's names
    f["track"] = root / "clip.track.json"
    rc, err, _ = sh(["track", str(CLIP), "--out", str(f["track"]), "--end", "2"])
    assert rc == 0, err
    f["gif"] = root / "animated.gif"
    with av.open(str(CLIP)) as inp, av.open(str(f["gif"]), "w", format="gif") as out:
        s = out.add_stream("gif", rate=10)
        s.width, s.height, s.pix_fmt = 256, 256, "rgb8"
        for i, frame in enumerate(inp.decode(video=0)):
            for p in s.encode(frame.reformat(width=256, height=256, format="rgb8")):
                out.mux(p)
            if i == 2:
                break
        for p in s.encode():
            out.mux(p)
    for name, files in USER_FILES.items():
        folder = root / name
        for rel in files:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(b"a user's " + rel.encode() + b"\n")
        f[name] = folder
    for k in ("track", "preview", "plate", "contact"):
        f[f"t_{k}"] = track(f"t_{k}.json", {"track": lambda d: d.__setitem__("image_size", [256]),
                                              "preview": lambda d: d.__setitem__("provenance", [1, 2]),
                                              "plate": lambda d: d["frames"][1].__setitem__("confidence", 0.123456789),
                                              "contact": lambda d: d["frames"][1].__setitem__("frame", 10 ** 20)}[k])
    f["t_plate"].write_text(f["t_plate"].read_text().replace("0.123456789", "1" * 401))
    return f


#: issue 17: a user's files of the names a command writes, per probe folder
USER_FILES = {"u_preview": ["mona.preview.mp4", "mona.contact_sheet.png"], "u_plate": ["mona.track.json"],
              "u_eval": ["results.csv", "liveportrait_d0/contact_sheet.png"], "u_prep": ["manifest.json"],
              "u_pack": ["contact_sheet.png"], "u_export": ["my_model.onnx"]}


def untouched(folder: Path):
    """A check: every user file of ``folder`` still holds the user's bytes."""
    return lambda: all((folder / rel).is_file() and (folder / rel).read_bytes() == b"a user's " + rel.encode() + b"\n"
                       for rel in USER_FILES[folder.name])


def cases(f: dict):
    root, user = f["root"], f["user"]
    ref, still, clip = str(REF), str(f["still"]), str(CLIP)
    no_torch = "import sys; sys.modules['torch'] = None; from monalisa.cli import main; sys.exit(main(sys.argv[1:]))"

    def kept():
        return (user / "comp.nk").is_file() and (user / "renders" / "beauty.0001.exr").is_file()

    def load(expr):
        return ["-c", "import sys\nfrom monalisa.nodes import trackfile\nfrom monalisa.errors import MonalisaError\n"
                f"try:\n    {expr}\nexcept MonalisaError as e:\n    print(e, file=sys.stderr); sys.exit(e.exit_code)"]

    yield "finetune --out a user's folder", ["finetune", ref, "--stills", still, "--out", str(user), "--steps", "1"], kept
    yield "train --reference a user's folder", ["train", "--data", str(f["prepared"]), "--out", str(root / "run1"),
                                                 "--steps", "1", "--k", "2", "--batch", "1", "--reference", str(user)], kept
    yield "finetune --out an existing file", ["finetune", ref, "--stills", still, "--out", str(f["file"]), "--steps", "1"], \
        lambda: f["file"].is_file()
    yield "finetune --out below a file", ["finetune", ref, "--stills", still, "--out", str(f["file"] / "pack"), "--steps", "1"], None
    yield "prepare --out an existing file", ["prepare", clip, "--out", str(f["file"]), "--size", "64", "--max-frames", "2"], None
    yield "prepare --out a user's folder", ["prepare", clip, "--out", str(user), "--size", "64", "--max-frames", "2"], kept
    yield "train --out an existing file", ["train", "--data", str(f["prepared"]), "--out", str(f["file"]), "--steps", "1",
                                           "--k", "2", "--batch", "1"], None
    yield "track --out an existing folder", ["track", clip, "--out", str(user), "--end", "1"], kept
    yield "track --out in /proc (unwritable)", ["track", clip, "--out", "/proc/monalisa/track.json", "--end", "1"], None
    yield "track an mp4 cut in half", ["track", str(f["cut"]), "--out", str(root / "cut.json")], None
    yield "prepare an mp4 cut in half", ["prepare", str(f["cut"]), "--out", str(root / "cutprep"), "--size", "64"], None
    yield "track --face abc", ["track", clip, "--out", str(root / "t.json"), "--face", "abc", "--end", "1"], None
    yield "track --upsample -1", ["track", clip, "--out", str(root / "t.json"), "--upsample", "-1", "--end", "1"], None
    yield "track --fps -5 --smooth", ["track", clip, "--out", str(root / "t.json"), "--fps", "-5", "--smooth", "--end", "2"], None
    yield "finetune: checkpoint.json is a list", ["finetune", str(f["badckpt"]), "--stills", still, "--out",
                                                  str(root / "pk"), "--steps", "1"], None
    yield "export: checkpoint.json is a list", ["export", str(f["badckpt"]), "--out", str(root / "onnx")], None
    yield "train --k above a clip's frames", ["train", "--data", str(f["prepared"]), "--out", str(root / "run2"),
                                              "--steps", "1", "--k", "8", "--batch", "1"], None
    yield "Ctrl-C train before its first checkpoint", ["train", "--data", str(f["prepared"]), "--out", str(root / "run4"),
                                                       "--steps", "1000", "--k", "2", "--batch", "1"], None
    yield "train without torch", ["-c", no_torch, "train", "--data", str(f["prepared"]), "--out", str(root / "run3")], None
    yield "finetune without torch", ["-c", no_torch, "finetune", ref, "--stills", still, "--out", str(root / "pk2")], None
    yield "track file: string coordinates", load(f"trackfile.load({str(f['t_str'])!r})"), None
    yield "track file: points: 5", load(f"trackfile.load({str(f['t_five'])!r})"), None
    yield "track file: 3 coordinates per point", load(f"trackfile.load({str(f['t_xyz'])!r})"), None
    yield "track file: negative frame numbers", load(f"trackfile.load({str(f['t_neg'])!r})"), None
    yield "track file: a directory", load(f"trackfile.load({str(f['t_dir'])!r})"), None
    yield "track CSV: binary bytes", load(f"trackfile.import_csv({str(f['csv_bin'])!r}, (256, 256))"), None
    yield from issue17(f)


def issue17(f: dict):
    """The cases of issue 17 (data loss, numeric options, animated GIF, track shapes, frame ranges)."""
    root, ref, still, clip, track = f["root"], str(REF), str(f["still"]), str(CLIP), str(f["track"])
    render = ["render", "--still", still, "--track", track, "--frames", "0-1"]
    out = lambda name: str(root / name / "mona.####.exr")  # noqa: E731
    pk = lambda flag, value: str(root / f"pk17{flag}{value}")  # noqa: E731
    # a user's files in the way
    yield "render --preview over a user's preview and sheet", [*render, "--out", out("u_preview"), "--preview"], \
        untouched(f["u_preview"])
    yield "render --plate over a user's mona.track.json", ["render", "--still", still, "--plate", clip, "--frames", "0-1",
                                                           "--out", out("u_plate")], untouched(f["u_plate"])
    yield "evaluate --out over a user's results.csv, clip/sheet", ["evaluate", clip, "--k", "1", "--targets", "2",
                                                                   "--window", "2", "--baselines-only", "--out",
                                                                   str(f["u_eval"])], untouched(f["u_eval"])
    yield "prepare --out over a user's manifest.json", ["prepare", clip, "--out", str(f["u_prep"]), "--size", "64",
                                                        "--max-frames", "2"], untouched(f["u_prep"])
    yield "finetune --out over a user's contact_sheet.png", ["finetune", ref, "--stills", still, "--out",
                                                             str(f["u_pack"]), "--steps", "1"], untouched(f["u_pack"])
    yield "export --out over a user's my_model.onnx", ["export", ref, "--out", str(f["u_export"])], untouched(f["u_export"])
    # numeric options
    for flag, value in (("--threads", "-1"), ("--threads", "2147483648"), ("--feather", "inf"), ("--feather", "1e308"),
                        ("--feather", "nan"), ("--smooth-strength", "inf"), ("--batch", "nan"), ("--correction", "nan")):
        yield f"render {flag} {value}", [*render, "--out", str(root / "r17" / "m.####.exr"), flag, value], None
    yield "render --track with --plate", [*render, "--plate", clip, "--out", str(root / "r17" / "m.####.exr")], None
    for flag, value in (("--threads", "2147483648"), ("--threads", "-1"), ("--steady", "nan"), ("--steady", "inf"),
                        ("--steps", "nan"), ("--jitter", "nan")):
        yield f"finetune {flag} {value}", ["finetune", ref, "--stills", still, "--out", pk(flag, value), "--steps", "1",
                                           flag, value], (lambda p=pk(flag, value): not Path(p).exists())
    train = ["train", "--data", str(f["prepared"]), "--steps", "1", "--k", "2", "--batch", "1"]
    for flag, value in (("--threads", "2147483648"), ("--device", "tpu"), ("--seed", "-1"), ("--batch", "nan")):
        run_dir = root / f"run17{flag}{value}"
        yield f"train {flag} {value}", [*train, "--out", str(run_dir), flag, value], \
            (lambda d=run_dir: not (d / "run.json").exists())
    yield "evaluate --finetune-steady nan", ["evaluate", clip, "--out", str(root / "e17"), "--finetune-steady", "nan"], None
    yield "evaluate --finetune-steady inf", ["evaluate", clip, "--out", str(root / "e17"), "--finetune-steady", "inf"], None
    for i, flags in enumerate((["--face", "99999,99999"], ["--face", "7"], ["--fps", "inf", "--smooth"])):
        t = root / f"t17_{i}.json"
        yield f"track {' '.join(flags)}", ["track", clip, "--out", str(t), *flags, "--end", "1"], \
            (lambda t=t: not t.exists())
    yield "prepare --size 100000", ["prepare", clip, "--out", str(root / "p17"), "--size", "100000", "--max-frames", "1"], None
    yield "prepare --size nan", ["prepare", clip, "--out", str(root / "p17"), "--size", "nan"], None
    yield "export --opset nan", ["export", ref, "--out", str(root / "x17"), "--opset", "nan"], None
    yield "publish --fps 0", ["publish", "--render", out("r17"), "--still", still, "--to", str(root / "pub17"),
                              "--fps", "0"], None
    yield "farm bundle --chunk-size nan", ["farm", "bundle", "--still", still, "--track", track, "--out",
                                           str(root / "b17"), "--chunk-size", "nan"], None
    # an animated GIF still
    yield "render an animated GIF still", ["render", "--still", str(f["gif"]), "--track", track, "--frames", "0-1",
                                           "--out", str(root / "g17" / "m.####.exr")], None
    yield "finetune an animated GIF still", ["finetune", ref, "--stills", str(f["gif"]), "--out", str(root / "g17pk"),
                                             "--steps", "1"], None
    # parsers' cases (issue 17 items 2, 3), for the closing table
    yield "render --frames 0-99999999999999", [*render[:-2], "--frames", "0-99999999999999", "--out",
                                               str(root / "r17" / "m.####.exr")], None
    yield "render --out mona.%99999999999d.exr", [*render, "--out", str(root / "r17" / "mona.%99999999999d.exr")], None
    yield "track file: image_size of 1 value", load_track(f["t_track"]), None
    yield "track file: provenance a list", load_track(f["t_preview"]), None
    yield "track file: a 401-digit confidence", load_track(f["t_plate"]), None
    yield "track file: frame 10**20", load_track(f["t_contact"]), None


def load_track(path):
    return ["-c", "import sys\nfrom monalisa.nodes import trackfile\nfrom monalisa.errors import MonalisaError\n"
            f"try:\n    trackfile.load({str(path)!r})\nexcept MonalisaError as e:\n    print(e, file=sys.stderr); "
            "sys.exit(e.exit_code)"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=None, help="run only cases whose name contains this")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder (default: a temporary one)")
    ap.add_argument("--skip", action="append", default=[], help="skip cases whose name contains this (repeatable; "
                    "e.g. a case that exhausts memory on an older checkout)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = args.keep or Path(tempfile.mkdtemp(prefix="monalisa-bad-"))
    f = make_fixtures(root)
    print("| case | exit | s | lines | message | user files kept |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, argv, check in cases(f):
        if (args.only and args.only not in name) or any(skip in name for skip in args.skip):
            continue
        interrupt = 8.0 if name.startswith("Ctrl-C") else None
        rc, err, secs = sh(argv, interrupt_after=interrupt)
        ok = "" if check is None else ("yes" if check() else "**NO**")
        print(f"| {name} | {rc} | {secs:.1f} | {len(said(err))} | {summary(err).replace('|', '/')} | {ok} |", flush=True)
        if check is not None and not check():  # put the user's files back for the next case
            (f["user"] / "renders").mkdir(parents=True, exist_ok=True)
            (f["user"] / "comp.nk").write_text("# a comp script\n")
            (f["user"] / "renders" / "beauty.0001.exr").write_bytes(b"\0" * 64)


if __name__ == "__main__":
    main()
