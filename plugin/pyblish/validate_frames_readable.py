"""Validate that every frame reads completely: all of its pixels, through OpenImageIO."""
import os

import pyblish.api

from monalisa.plugin import publish as lib


class ValidateFramesReadable(pyblish.api.InstancePlugin):
    """Each frame's pixels read to the end (a truncated or damaged file, e.g. a copy cut short,
    fails). Repair: delete the damaged frames and re-run `monalisa render` (it renders only the
    frames missing on disk)."""

    order = pyblish.api.ValidatorOrder
    families = [lib.RENDER_FAMILY]
    label = "Frames read completely"

    def process(self, instance):
        from monalisa.errors import MediaError
        from monalisa.nodes.preview import read_image

        bad = {}
        for frame, path in instance.data["files"].items():
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                continue  # missing and empty frames: their own validators report them
            try:
                read_image(path)
            except MediaError as exc:
                bad[frame] = str(exc)
        if bad:
            first = next(iter(bad))
            raise ValueError(f"{len(bad)} of {len(instance.data['files'])} frame(s) cannot be read completely: "
                             f"{lib.frame_list(bad)} ({bad[first]}); delete them and re-run `monalisa render`")
