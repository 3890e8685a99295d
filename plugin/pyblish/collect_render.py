"""Collect the rendered frame sequence of a monalisa publish request as one instance."""
import pyblish.api

from monalisa.plugin import publish as lib


class CollectMonalisaRender(pyblish.api.ContextPlugin):
    """The render named in the request: its frames, files, still and the still's size."""

    order = pyblish.api.CollectorOrder
    label = "Collect monalisa render"

    def process(self, context):
        req = lib.request_from(context)
        if req is None:
            self.log.info("no monalisa publish request in this context; nothing to collect")
            return
        from monalisa.plugin.core import frame_path

        frames = lib.expected_frames(req)
        on_disk = lib.sequence_files(req.render)
        still_size = lib.image_size(req.still)
        instance = context.create_instance(req.name, family=lib.RENDER_FAMILY)
        instance.data["families"] = [lib.RENDER_FAMILY]
        instance.data["pattern"] = req.render
        instance.data["frames"] = frames
        instance.data["files"] = {f: on_disk.get(f, frame_path(req.render, f)) for f in frames}
        instance.data["still"] = req.still
        instance.data["stillSize"] = still_size
        instance.data["track"] = req.track
        instance.data["fps"] = float(req.fps) if req.fps else lib.render_fps(instance)  # --fps, else the render's
        self.log.info("%s: %d frames expected, %d on disk, %g fps", req.render, len(frames), len(on_disk),
                      instance.data["fps"])
