"""Build docs/images/render_example.jpg: the driving clip over renders of the still, close up.

    # the README main job's track, then (R = the common render options):
    R="--still assets/portraits/liveportrait_s3.jpg --track runs/demo/track.json --frames 12,24,40,56"
    monalisa render $R --model reference --out runs/demo/ref_png/mona.####.png
    monalisa render $R --out runs/demo/png/mona.####.png
    monalisa render $R --mouth off --out runs/demo/off_png/mona.####.png
    python docs/images/render_example.py --clip assets/clips/liveportrait_d10.mp4 \
        --still assets/portraits/liveportrait_s3.jpg --rows runs/demo/ref_png runs/demo/png \
        --mouths runs/demo/png runs/demo/off_png --out docs/images/render_example.jpg

Row 0: the clip's frames; then per --rows folder (PNG frames of `monalisa render --out f.####.png`):
the still, then the rendered frames, all cut to one square around the still's face; then per
--mouths folder the same tiles cut to a square around the still's mouth (close-ups).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import cv2
import numpy as np

TILE = 256


def clip_frames(path, wanted) -> dict:
    out = {}
    with av.open(str(path)) as movie:
        for i, frame in enumerate(movie.decode(video=0)):
            if i in wanted:
                out[i] = frame.to_ndarray(format="rgb24")
            if i >= max(wanted):
                break
    return out


def square(image, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    shrink = x1 - x0 > TILE
    return cv2.resize(image[y0:y1, x0:x1], (TILE, TILE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def face_box(rgb, scale: float = 2.2, part=slice(0, 68)):
    """A square around the still's face (or around ``part`` of its landmarks), ``scale`` x its width."""
    from monalisa.nodes.detect import create_detector

    faces = create_detector("dlib").detect(rgb)
    if not faces:
        raise SystemExit("no face on the still")
    pts = max(faces, key=lambda f: f.score).points[part]
    cx, cy = pts.mean(axis=0)
    half = scale * (pts[:, 0].max() - pts[:, 0].min()) / 2
    h, w = rgb.shape[:2]
    half = min(half, cx, cy, w - cx, h - cy)
    return int(cx - half), int(cy - half), int(cx + half), int(cy + half)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", required=True)
    ap.add_argument("--still", required=True)
    ap.add_argument("--rows", nargs="+", required=True, help="folders of rendered PNG frames (f.0012.png ...)")
    ap.add_argument("--mouths", nargs="*", default=[], help="folders of rendered PNG frames for mouth close-ups")
    ap.add_argument("--frames", type=int, nargs="+", default=[12, 24, 40, 56])
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    still = cv2.cvtColor(cv2.imread(a.still), cv2.COLOR_BGR2RGB)
    box = face_box(still)
    driving = clip_frames(a.clip, {0, *a.frames})
    top = [cv2.resize(driving[f], (TILE, TILE), interpolation=cv2.INTER_AREA) for f in [0, *a.frames]]
    rows = [top]
    mouth = face_box(still, 1.1, slice(48, 68))
    for folder, cut in [(f, box) for f in a.rows] + [(f, mouth) for f in a.mouths]:
        tiles = [square(still, cut)]
        for f in a.frames:
            found = sorted(Path(folder).glob(f"*.{f:04d}.png"))
            if not found:
                raise SystemExit(f"{folder}: no PNG frame {f:04d}")
            tiles.append(square(cv2.cvtColor(cv2.imread(str(found[0])), cv2.COLOR_BGR2RGB), cut))
        rows.append(tiles)
    sheet = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    from monalisa.files import write_bytes

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    write_bytes(a.out, jpeg.tobytes())  # atomically
    print(f"wrote {a.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
