"""Validate that every frame has the still's resolution."""
import pyblish.api

from monalisa.plugin import publish as lib


class ValidateResolution(pyblish.api.InstancePlugin):
    """Frames are the size of the still they animate. Repair: render from the same still."""

    order = pyblish.api.ValidatorOrder
    families = [lib.RENDER_FAMILY]
    label = "Resolution matches the still"

    def process(self, instance):
        want = tuple(instance.data["stillSize"])
        bad = [(f, h["size"]) for f, h in lib.headers(instance).items() if tuple(h["size"]) != want]
        if bad:
            f, size = bad[0]
            raise ValueError(f"{len(bad)} frame(s) are not {want[0]}x{want[1]} like the still "
                             f"{instance.data['still']}: frame {f} is {size[0]}x{size[1]}; render from that still")
