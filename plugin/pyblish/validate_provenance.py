"""Validate the frames' provenance: synthetic flag, and hashes matching the still, track and models."""
import pyblish.api

from monalisa.plugin import publish as lib

REQUIRED = ("monalisa:synthetic", "monalisa:version", "monalisa:model_sha256", "monalisa:still_sha256",
            "monalisa:track_sha256", "monalisa:frame", "monalisa:mode")


class ValidateProvenance(pyblish.api.InstancePlugin):
    """Every frame says it is synthetic and which still, track and model files made it; those
    must be the files being published. Repair: publish with the same --still/--track/--model/
    --identity the render used, or re-render."""

    order = pyblish.api.ValidatorOrder + 0.1  # after the per-file checks, which explain unreadable frames
    families = [lib.RENDER_FAMILY]
    label = "Provenance matches"

    def process(self, instance):
        context = instance.context
        heads = lib.headers(instance)
        for f, h in heads.items():
            missing = [k for k in REQUIRED if k not in h]
            if missing:
                raise ValueError(f"frame {f}: provenance missing ({', '.join(missing)}); not a monalisa render, "
                                 "or written by an older monalisa: re-render it")
            if int(h["monalisa:synthetic"]) != 1:
                raise ValueError(f"frame {f}: monalisa:synthetic is {h['monalisa:synthetic']}, not 1")
            if int(h["monalisa:frame"]) != int(f):
                raise ValueError(f"frame {f}: its header says frame {h['monalisa:frame']}; files were renamed")
        models = {i.data["sha256"]: i.data["path"] for i in context if i.data.get("family") == lib.MODEL_FAMILY}
        identity = [i.data for i in context if i.data.get("family") == lib.MODEL_FAMILY and i.data.get("identity")]
        expect = {"monalisa:still_sha256": (lib.sha256(instance.data["still"]), instance.data["still"])}
        if instance.data["track"]:
            expect["monalisa:track_sha256"] = (lib.sha256(instance.data["track"]), instance.data["track"])
        if identity:
            expect["monalisa:identity_sha256"] = (identity[0]["sha256"], identity[0]["path"])
        for f, h in heads.items():
            for key, (digest, path) in expect.items():
                if h.get(key) != digest:
                    raise ValueError(f"frame {f}: {key} {str(h.get(key))[:12]}... does not match {path} "
                                     f"({digest[:12]}...); publish the files the render used, or re-render")
            for key in ("monalisa:model_sha256", "monalisa:embedder_sha256"):
                value = h.get(key, "")
                if key == "monalisa:embedder_sha256" and not value:
                    continue  # identity mode has no embedder
                if value not in models:
                    raise ValueError(f"frame {f}: {key} {value[:12]}... matches none of the collected models "
                                     f"({', '.join(sorted(p.rsplit('/', 1)[-1] for p in models.values()))}); "
                                     "publish with the --model/--identity the render used")
        instance.data["provenance"] = {k: v for k, v in next(iter(heads.values()), {}).items()
                                       if k.startswith("monalisa:") and k not in ("monalisa:frame", "monalisa:flagged")}
