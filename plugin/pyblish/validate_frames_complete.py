"""Validate that every frame of the range was rendered."""
import os

import pyblish.api

from monalisa.plugin import publish as lib


class ValidateFramesComplete(pyblish.api.InstancePlugin):
    """Each frame of the range has a file. Repair: re-render the missing frames
    (`monalisa render` skips the frames already done)."""

    order = pyblish.api.ValidatorOrder
    families = [lib.RENDER_FAMILY]
    label = "Frames complete"

    def process(self, instance):
        frames = instance.data["frames"]
        if not frames:
            raise ValueError(f"{instance.data['pattern']}: no frames found; render the shot first")
        missing = [f for f, p in instance.data["files"].items() if not os.path.isfile(p)]
        if missing:
            raise ValueError(f"{len(missing)} of {len(frames)} frames missing: {lib.frame_list(missing)} "
                             f"({instance.data['files'][missing[0]]}); re-run `monalisa render` for them")
