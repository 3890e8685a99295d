"""Validate that every frame carries the matte channel."""
import pyblish.api

from monalisa.nodes.writer import matte_channel
from monalisa.plugin import publish as lib


class ValidateMatte(pyblish.api.InstancePlugin):
    """Each frame has the matte channel (the soft face matte comp needs: ``matte.A``, or ``matte`` in
    frames rendered before it moved to its own layer).
    Repair: render EXR frames with `monalisa render` (previews in PNG/JPEG carry no matte)."""

    order = pyblish.api.ValidatorOrder
    families = [lib.RENDER_FAMILY]
    label = "Matte channel present"

    def process(self, instance):
        bad = [f for f, h in lib.headers(instance).items() if matte_channel(h["channels"]) is None]
        if bad:
            first = lib.headers(instance)[bad[0]]["channels"]
            raise ValueError(f"{len(bad)} frame(s) have no 'matte' channel: {lib.frame_list(bad)} "
                             f"(channels {', '.join(first)}); render EXR frames with `monalisa render`")
