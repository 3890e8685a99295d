"""Validate that no rendered frame is an empty (zero-byte) file."""
import os

import pyblish.api

from monalisa.plugin import publish as lib


class ValidateFramesNonEmpty(pyblish.api.InstancePlugin):
    """No frame is 0 bytes. Repair: delete the empty files and re-render those frames."""

    order = pyblish.api.ValidatorOrder
    families = [lib.RENDER_FAMILY]
    label = "Frames not empty"

    def process(self, instance):
        empty = [f for f, p in instance.data["files"].items() if os.path.isfile(p) and os.path.getsize(p) == 0]
        if empty:
            raise ValueError(f"{len(empty)} zero-byte frame(s): {lib.frame_list(empty)} "
                             f"({instance.data['files'][empty[0]]}); delete them and re-run `monalisa render`")
