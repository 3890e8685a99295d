"""Self-reenactment quality of a checkpoint: K frames of a video -> embedding; other frames' rasters
-> generated frames, compared with the real ones (L1 in [-1, 1], SSIM on uint8).

    python benchmarks/reconstruction.py CHECKPOINT PREPARED_DIR [--k 8] [--frames 8] [--sheet out.png]

Prints one table row per video and the mean; --sheet writes a contact sheet (real | raster |
generated, one row per video) to look at.
"""
import argparse
import statistics

import numpy as np
import torch
from skimage.metrics import structural_similarity

from monalisa.models.checkpoint import build_models, load_checkpoint
from monalisa.models.data import PreparedData
from monalisa.models.tensors import to_tensor as to_t
from monalisa.models.tensors import to_uint8 as to_u8
from monalisa.nodes.sheet import write_contact_sheet


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("data")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--sheet", default=None)
    args = ap.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    E, G, _ = (n.eval() for n in build_models(ckpt))
    data, res = PreparedData(args.data), ckpt.config.resolution
    print(f"checkpoint {args.checkpoint} (step {ckpt.step}, {res}px), K={args.k}, {args.frames} frames per video")
    print("| video | L1 | SSIM |")
    print("| --- | --- | --- |")
    rows, l1s, ssims = [], [], []
    for i, video in enumerate(data.videos):
        n = len(video.frames)
        picks = np.linspace(0, n - 1, args.k + args.frames).round().astype(int)
        refs, tests = picks[::2][: args.k], np.setdiff1d(picks, picks[::2][: args.k])[: args.frames]
        ref = [data.pair(i, int(f), res) for f in refs]
        tgt = [data.pair(i, int(f), res) for f in tests]
        with torch.no_grad():
            e = E(to_t(np.stack([p[0] for p in ref]))[None], to_t(np.stack([p[1] for p in ref]))[None])
            fake = to_u8(G(to_t(np.stack([p[1] for p in tgt])), e.expand(len(tgt), -1)))
        real = np.stack([p[0] for p in tgt])
        l1 = float(np.abs(fake.astype(np.float32) - real).mean() / 127.5)
        ssim = statistics.mean(structural_similarity(a, b, channel_axis=2) for a, b in zip(real, fake))
        l1s.append(l1)
        ssims.append(ssim)
        print(f"| {video.id} | {l1:.4f} | {ssim:.4f} |")
        rows.append([real[0], tgt[0][1], fake[0], real[-1], tgt[-1][1], fake[-1]])
    print(f"| **mean** | {statistics.mean(l1s):.4f} | {statistics.mean(ssims):.4f} |")
    if args.sheet:
        write_contact_sheet(args.sheet, rows)
        print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
