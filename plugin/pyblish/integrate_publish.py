"""Integrate the render, its models and its review files into ROOT/NAME/vNNN, atomically."""
import pyblish.api

from monalisa.plugin import publish as lib


class IntegrateVersion(pyblish.api.ContextPlugin):
    """A new version folder, built under a hidden name and renamed into place; the number is one
    past every version already there (complete or not), so nothing is reused or overwritten."""

    order = pyblish.api.IntegratorOrder
    label = "Integrate version"

    def process(self, context):
        if lib.request_from(context) is None:
            return
        failed = [r for r in context.data.get("results", []) if not r["success"]]
        if failed:  # pyblish goes on after an extractor error: never publish half a version
            raise RuntimeError(f"not integrated: {len(failed)} earlier step(s) failed")
        version = lib.integrate(context)
        context.data["monalisa.versionDir"] = str(version)
        self.log.info("published %s", version)
