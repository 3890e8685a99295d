"""Rebuild the bundled fixtures in assets/ from the original MIT-licensed LivePortrait clips.

    python assets/make_assets.py /path/to/shared/data

clips/*.mp4: the first 64 frames of two LivePortrait driving clips, scaled 512 -> 256, H.264.
export/calibration.npz (package data, in the wheel): 12 frames of each bundled clip as aligned 128x128 face crops
(uint8 `images` (24, 128, 128, 3)) and their dlib landmarks (float32 `landmarks` (24, 68, 2),
pixels of the 128 square): real inputs for export parity checks and int8 calibration.
"""
import sys
from pathlib import Path

import av
import numpy as np

from monalisa.files import atomic_path
from monalisa.models.prepare import PrepareOptions, prepare

HERE = Path(__file__).resolve().parent
SOURCES = {"liveportrait_d0.mp4": "clips/liveportrait_d0.mp4", "liveportrait_d10.mp4": "clips/liveportrait_d10.mp4"}
FRAMES, SIDE = 64, 256


def reencode(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
            rate = inp.streams.video[0].average_rate
            stream = out.add_stream("libx264", rate=rate)
            stream.width = stream.height = SIDE
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "20", "preset": "slow"}
            stream.codec_context.time_base = 1 / rate
            for i, frame in enumerate(inp.decode(video=0)):
                if i == FRAMES:
                    break
                small = frame.reformat(width=SIDE, height=SIDE, format="yuv420p")
                small.pts = i
                small.time_base = 1 / rate
                out.mux(stream.encode(small))
            out.mux(stream.encode(None))


def main(shared: Path) -> None:
    clips = []
    for name, rel in SOURCES.items():
        clips.append(HERE / "clips" / name)
        reencode(shared / rel, clips[-1])
    tmp = HERE / "calibration" / ".prepared"
    manifest = prepare(clips, tmp, PrepareOptions(size=128, every=5, max_frames=12), progress=False)
    images = np.concatenate([np.load(tmp / v["dir"] / "frames.npy") for v in manifest["videos"]])
    points = np.concatenate([np.load(tmp / v["dir"] / "landmarks.npy") for v in manifest["videos"]])
    with atomic_path(HERE.parent / "export" / "calibration.npz") as out:  # package data of monalisa.export
        with open(out, "wb") as f:
            np.savez_compressed(f, images=images, landmarks=points)
    import shutil

    shutil.rmtree(tmp)
    print(images.shape, points.shape)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
