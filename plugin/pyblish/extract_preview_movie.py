"""Extract an H.264 preview movie of the render (sRGB, even size)."""
import os

import pyblish.api

from monalisa.plugin import publish as lib


class ExtractPreviewMovie(pyblish.api.InstancePlugin):
    order = pyblish.api.ExtractorOrder
    families = [lib.RENDER_FAMILY]
    label = "Preview movie"

    def process(self, instance):
        from monalisa.plugin import review

        path = os.path.join(instance.context.data["stagingDir"], f"{instance.name}.preview.mp4")
        files = [instance.data["files"][f] for f in instance.data["frames"]]
        review.write_movie(path, files, fps=instance.data["fps"])
        instance.data.setdefault("review", {})["preview_movie"] = path
