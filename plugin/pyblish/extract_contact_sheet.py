"""Extract a contact sheet PNG of the render (up to 12 frames, sRGB)."""
import os

import pyblish.api

from monalisa.plugin import publish as lib


class ExtractContactSheet(pyblish.api.InstancePlugin):
    order = pyblish.api.ExtractorOrder
    families = [lib.RENDER_FAMILY]
    label = "Contact sheet"

    def process(self, instance):
        from monalisa.plugin import review

        frames = instance.data["frames"]
        path = os.path.join(instance.context.data["stagingDir"], f"{instance.name}.contact_sheet.png")
        review.write_contact_sheet(path, [instance.data["files"][f] for f in review.pick(frames, 12)])
        instance.data.setdefault("review", {})["contact_sheet"] = path
