"""Few-shot fine-tuning (paper §3.3): adapt G and psi' = P e_hat, and D with W' = e_hat, to K stills.

:func:`finetune` is the loop (one shared adversarial update per step, models/update.py);
:func:`finetune_warp` the warp-conditioned generator's (content only: fast on a CPU);
:func:`make_identity_pack` is the whole command: checks, crops, fine-tuning, the pack folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from monalisa.models.config import FINETUNE_JITTER, FINETUNE_STEADY, OptimConfig
from monalisa.models.losses import ContentLoss, LossWeights, warp_terms
from monalisa.models.update import gan_update

MAX_STILLS = 32


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 300
    batch: int = 4  # stills per step (at most K)
    seed: int = 0
    optim: OptimConfig = OptimConfig()


def finetune(embedder, generator, discriminator, images, rasters, cfg: FinetuneConfig = FinetuneConfig(),
             content: ContentLoss | None = None, weights: LossWeights = LossWeights(), progress=True):
    """images, rasters (K, 3, H, W) in [-1, 1] -> (psi (1, n), e_hat (1, E)); G and D are tuned in place."""
    gen = torch.Generator().manual_seed(cfg.seed)
    content = content or ContentLoss(weights=weights)
    embedder.eval()
    with torch.no_grad():
        e_hat = embedder(images[None], rasters[None])  # (1, E)
    psi = torch.nn.Parameter(generator.project(e_hat).detach())  # psi' = P e_hat
    w = torch.nn.Parameter(e_hat.clone())  # W' = e_hat
    o = cfg.optim
    opt_g = torch.optim.Adam([*generator.parameters(), psi], lr=o.lr_eg, betas=o.betas)
    opt_d = torch.optim.Adam([*discriminator.parameters(), w], lr=o.lr_d, betas=o.betas)
    generator.train()
    discriminator.train()
    k, b = images.shape[0], min(cfg.batch, images.shape[0])

    def score(im, r):
        return discriminator.score_with(im, r, w.expand(len(im), -1))

    for _ in tqdm(range(cfg.steps), desc="finetune", unit="step", disable=not progress):
        idx = torch.randperm(k, generator=gen)[:b]
        x, y = images[idx], rasters[idx]  # (b, 3, H, W)
        fake = generator.synthesize(y, psi.expand(b, -1))
        gan_update(fake, x, y, score_g=score, score_d=score, opt_g=opt_g, opt_d=opt_d, content=content,
                   weights=weights)
    generator.eval()
    return psi.detach(), e_hat


#: landmark noise (frame px) of the jittered copies and of the steadiness term in warp fine-tuning
JITTER_PX = 1.0


def warp_pairs(still, still_points, frames, frame_points, geometry, driven_points=None, *, jitter: int = 0,
               steady: bool = False, seed: int = 0) -> dict:
    """Fine-tuning pairs of the warp generator: the still warped (``nodes.warp``, as the render path
    does) to each frame's landmarks -> that frame, both cut by the one model crop.

    still uint8 (H, W, 3) with still_points (68, 2); frames: uint8 images with frame_points (68, 2)
    each; driven_points: each frame's landmarks in the still's pixels (default frame_points: frames
    of the still's own camera, e.g. a clip). jitter: extra copies per frame with the landmarks moved
    by N(0, JITTER_PX); steady: also each pair with its landmarks moved again, in the pair's own crop.
    -> tensors in [-1, 1]: "warped", "targets", "rasters" (N, 3, R, R) (+ "jitter_warped",
    "jitter_rasters" with steady).
    """
    from monalisa.models.tensors import to_tensor
    from monalisa.nodes.facecrop import model_crop, rasterize
    from monalisa.nodes.warp import build_mesh, dense_warp

    h, w = still.shape[:2]
    mesh = build_mesh(still_points, (w, h))
    rng = np.random.default_rng(seed)
    driven_points = frame_points if driven_points is None else driven_points
    out = {k: [] for k in ("warped", "targets", "rasters", *(("jitter_warped", "jitter_rasters") if steady else ()))}
    for image, pts, driven in zip(frames, frame_points, driven_points):
        for j in range(1 + jitter):
            noise = rng.normal(0.0, JITTER_PX, (68, 2)) if j else 0.0
            warped = model_crop(dense_warp(still, mesh, driven + noise).image, driven + noise, geometry)
            out["warped"].append(warped.image)
            out["rasters"].append(warped.raster)
            out["targets"].append(model_crop(image, pts + noise, geometry).image)
            if steady:
                moved = driven + noise + rng.normal(0.0, JITTER_PX, (68, 2))
                out["jitter_warped"].append(model_crop(dense_warp(still, mesh, moved).image, driven + noise,
                                                       geometry).image)
                out["jitter_rasters"].append(rasterize(warped.transform.apply(moved), geometry.resolution))
    return {k: to_tensor(np.stack(v)) for k, v in out.items()}


def finetune_warp(embedder, generator, images, rasters, pairs: dict, *, steps: int = 100, lr: float = 1e-4,
                  batch: int = 4, seed: int = 0, content: ContentLoss | None = None, steady_weight: float = 0.0,
                  progress: bool = False):
    """Few-shot fine-tuning of the warp generator (models/warpgen.py) on one identity.

    images, rasters (K, 3, R, R): the K stills (for e_hat); pairs: :func:`warp_pairs`. With
    ``steady_weight`` (and the pairs' jittered copies) the network's part, mask * correction, must
    not change when the landmarks move by a pixel. Tunes G and psi' = P e_hat on content + the
    direct term (models/meta.py) -> (psi (1, n), e_hat (1, E)).
    """
    from monalisa.models.warpgen import compose

    gen = torch.Generator().manual_seed(seed)
    content = content or ContentLoss()
    embedder.eval()
    with torch.no_grad():
        e_hat = embedder(images[None], rasters[None])
    psi = torch.nn.Parameter(generator.project(e_hat).detach())
    opt = torch.optim.Adam([*generator.parameters(), psi], lr=lr, betas=(0.0, 0.999))
    generator.train()
    warped, targets, pair_rasters = pairs["warped"], pairs["targets"], pairs["rasters"]
    n, b = targets.shape[0], min(batch, targets.shape[0])
    for _ in tqdm(range(steps), desc="finetune-warp", unit="step", disable=not progress):
        idx = torch.randperm(n, generator=gen)[:b]
        corr, mask = generator.synthesize(pair_rasters[idx], warped[idx], psi.expand(b, -1))
        jittered = None
        if steady_weight > 0 and "jitter_warped" in pairs:
            jittered = generator.synthesize(pairs["jitter_rasters"][idx], pairs["jitter_warped"][idx],
                                            psi.expand(b, -1))
        terms = warp_terms(warped[idx], targets[idx], corr, mask, jittered, steady_weight=steady_weight)
        loss = content(compose(warped[idx], corr, mask), targets[idx]) + sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    generator.eval()
    return psi.detach(), e_hat


def check_request(checkpoint, stills, out, steps: int, overwrite: bool = False) -> None:
    """Everything ``make_identity_pack`` needs, checked before any work (one line, exit 2)."""
    from monalisa.errors import ConfigError, DataError, MediaError
    from monalisa.files import check_out_dir
    from monalisa.models.identity import FILES

    if not 1 <= len(stills) <= MAX_STILLS:
        raise DataError(f"--stills: got {len(stills)} images, need 1..{MAX_STILLS} stills of one person")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    for p in stills:
        if not Path(p).is_file():
            raise MediaError(f"{p}: no such still image")
    check_out_dir(out, FILES, overwrite=overwrite)


def make_identity_pack(checkpoint, stills, out, *, steps: int = 300, name: str | None = None, vgg19=None,
                       cfg: FinetuneConfig | None = None, overwrite: bool = False, progress: bool = True,
                       steady: float = FINETUNE_STEADY, jitter: int = FINETUNE_JITTER,
                       stand_in: str = "pyramid") -> dict:
    """Fine-tune ``checkpoint`` on ``stills`` and write the identity pack ``out`` (identity.safetensors,
    identity.json, contact_sheet.png: crops | rasters | (warped |) output). Returns identity.json's content.

    A warp-generator checkpoint learns from pairs: the first still warped to each still's expression
    (its landmarks brought onto the first still's pose by :func:`onto`) -> that still; give the still
    you animate first. ``steady``: the steadiness term's weight, ``jitter``: landmark-jittered copies
    of each pair (warp generators); ``stand_in``: the content loss without VGG weights
    (``models.config.STAND_INS``). ``monalisa finetune`` and ``monalisa evaluate`` both come here."""
    from monalisa.files import remove_stale_temps, sha256_file
    from monalisa.models.checkpoint import build_models, crop_geometry, load_checkpoint
    from monalisa.models.identity import save_identity
    from monalisa.models.tensors import to_tensor, to_uint8
    from monalisa.nodes.sheet import contact_sheet
    from monalisa.nodes.stills import prepare_stills

    stills, out = [Path(p) for p in stills], Path(out)
    check_request(checkpoint, stills, out, steps, overwrite)
    ckpt = load_checkpoint(checkpoint)
    E, G, D = build_models(ckpt)
    geometry = crop_geometry(ckpt)
    crops = prepare_stills(stills, geometry)
    content = ContentLoss(vgg19_path=vgg19, stand_in=stand_in)
    remove_stale_temps(out.parent, out.name)
    images, rasters = to_tensor(crops.images), to_tensor(crops.rasters)
    cfg = cfg or FinetuneConfig(steps=steps)
    meta = {"name": name or out.name, "k": len(stills), "steps": cfg.steps, "seed": cfg.seed, "batch": cfg.batch,
            "content_loss": "vgg19" if vgg19 else content.stand_in,
            "images": [{"path": str(p), "sha256": sha256_file(p)} for p in stills],
            "base_checkpoint_sha256": ckpt.sha256, "config": ckpt.config.to_dict(), "crop": geometry.to_dict()}
    if ckpt.config.generator == "warp":
        from monalisa.models.warpgen import compose

        pairs = warp_pairs(crops.frames[0], crops.frame_points[0], crops.frames, crops.frame_points, geometry,
                           [onto(crops.frame_points[0], p) for p in crops.frame_points], jitter=jitter,
                           steady=steady > 0)
        psi, e_hat = finetune_warp(E, G, images, rasters, pairs, steps=cfg.steps, batch=cfg.batch, seed=cfg.seed,
                                   content=content, steady_weight=steady, progress=progress)
        own = slice(None, None, 1 + jitter)  # each still's own pair, not its jittered copies
        warped, warped_rasters = pairs["warped"][own], pairs["rasters"][own]
        with torch.no_grad():
            recon = to_uint8(compose(warped, *G.synthesize(warped_rasters, warped, psi.expand(len(stills), -1))))
        columns = [crops.images, crops.rasters, to_uint8(warped), recon]
        meta.update(lr={"generator": 1e-4}, still=str(stills[0]), steady=steady, jitter=jitter)
    else:
        psi, e_hat = finetune(E, G, D, images, rasters, cfg, content, progress=progress)
        with torch.no_grad():
            recon = to_uint8(G.synthesize(rasters, psi.expand(len(stills), -1)))
        columns = [crops.images, crops.rasters, recon]
        meta["lr"] = {"generator": cfg.optim.lr_eg, "discriminator": cfg.optim.lr_d}
    sheet = contact_sheet([list(row) for row in zip(*columns)])
    save_identity(out, G, psi, e_hat, meta, {"contact_sheet.png": sheet})
    return meta


def onto(reference, points) -> np.ndarray:
    """``points`` (68, 2) of one photo moved into another's pixels by the similarity that best fits
    them onto ``reference`` (68, 2): the face's shape (expression) stays, its pose and scale become
    the reference's. Stills of a person are not one camera: this is how still j drives still 0.
    (Fitted robustly on all 68 points, not on ``nodes.crop.STABLE``, which holds the mouth corners:
    a smile would move the whole face.)"""
    import cv2

    m, _ = cv2.estimateAffinePartial2D(np.asarray(points, np.float32), np.asarray(reference, np.float32),
                                       method=cv2.LMEDS)
    return np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]
