"""Fine-tune a meta-trained checkpoint on K = 1..32 stills of a new person; write an identity pack.

Example: monalisa finetune ckpt/ --stills a.jpg b.jpg --out packs/anna --steps 300
The pack holds identity.safetensors, identity.json and contact_sheet.png (crops | rasters | output).
"""
from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("finetune", help="fine-tune on stills of one person -> identity pack",
                       description=__doc__)
    p.add_argument("checkpoint", type=Path, help="checkpoint folder from monalisa train")
    p.add_argument("--stills", type=Path, nargs="*", default=[], help="1..32 images of the person")
    p.add_argument("--out", type=Path, required=True, help="identity pack folder to write")
    p.add_argument("--steps", type=int, default=300, help="fine-tuning steps (default 300)")
    p.add_argument("--name", default=None, help="identity name (default: the --out folder name)")
    p.add_argument("--vgg19", type=Path, default=None, help="local VGG19 .safetensors for the content loss")
    p.set_defaults(run=run)


def prepare_stills(paths, size):
    """-> (crops uint8 (K, size, size, 3), rasters uint8 (K, size, size, 3)); NoFaceError per file."""
    import numpy as np

    from monalisa.errors import NoFaceError
    from monalisa.nodes.crop import align_face
    from monalisa.nodes.detect import create_detector
    from monalisa.nodes.media import read_image
    from monalisa.nodes.raster import rasterize

    detector, crops, rasters = create_detector("dlib"), [], []
    for path in paths:
        rgb = read_image(path)
        faces = detector.detect(rgb)
        if not faces:
            raise NoFaceError(f"{path}: no face found; give a still with one visible face")
        face = max(faces, key=lambda f: f.score)
        tf = align_face(face.points, size)
        crops.append(np.asarray(tf.warp(rgb)))
        rasters.append(np.asarray(rasterize(tf.apply(face.points), size)))
    return np.stack(crops), np.stack(rasters)


def contact_sheet(crops, rasters, recon) -> bytes:
    import cv2
    import numpy as np

    rows = [np.concatenate([c, r, o], axis=1) for c, r, o in zip(crops, rasters, recon)]
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return png.tobytes()


def run(args) -> int:
    from monalisa.errors import ConfigError, DataError, MediaError
    from monalisa.models.finetune import MAX_STILLS

    k = len(args.stills)
    if not 1 <= k <= MAX_STILLS:
        raise DataError(f"--stills: got {k} images, need 1..{MAX_STILLS} stills of one person")
    if args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    for p in args.stills:
        if not p.is_file():
            raise MediaError(f"{p}: no such still image")

    import torch

    from monalisa.files import sha256_file
    from monalisa.models.checkpoint import build_models, load_checkpoint
    from monalisa.models.finetune import FinetuneConfig, finetune
    from monalisa.models.identity import save_identity
    from monalisa.models.losses import ContentLoss

    ckpt = load_checkpoint(args.checkpoint)
    E, G, D = build_models(ckpt)
    size = ckpt.config.resolution
    crops, rasters = prepare_stills(args.stills, size)
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    images, rast = to_t(crops), to_t(rasters)
    cfg = FinetuneConfig(steps=args.steps)
    psi, e_hat = finetune(E, G, D, images, rast, cfg, ContentLoss(vgg19_path=args.vgg19))
    with torch.no_grad():
        recon = G.synthesize(rast, psi.expand(k, -1))
    recon_u8 = ((recon.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    meta = {"name": args.name or args.out.name, "k": k, "steps": args.steps, "seed": cfg.seed, "batch": cfg.batch,
            "lr": {"generator": cfg.optim.lr_eg, "discriminator": cfg.optim.lr_d},
            "content_loss": "vgg19" if args.vgg19 else "l1+ms-ssim",
            "images": [{"path": str(p), "sha256": sha256_file(p)} for p in args.stills],
            "base_checkpoint_sha256": ckpt.sha256, "config": ckpt.config.to_dict()}
    save_identity(args.out, G, psi, e_hat, meta,
                  {"contact_sheet.png": contact_sheet(crops, rasters, recon_u8)})
    print(f"wrote identity pack {args.out} (K={k}, {args.steps} steps)")
    return 0
