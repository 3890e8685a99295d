"""Run by the bpy venv's Python (tests/plugin/test_blender.py): install the add-on as Blender does
(a folder in an add-ons path), render through its operator headless, print a JSON summary."""
import json
import os
import sys
from pathlib import Path

addons, still, track, out, executable = sys.argv[1:6]
sys.path.insert(0, addons)

import bpy  # noqa: E402

import monalisa_blender  # noqa: E402

monalisa_blender.register()
scene = bpy.context.scene
props = scene.monalisa
props.still, props.track, props.out, props.executable = still, track, out, executable
result = bpy.ops.monalisa.animate()
editor = scene.sequence_editor
strips = list(editor.strips) if editor else []
images = [i for i in bpy.data.images if i.source == "SEQUENCE"]
bad = bpy.context.scene.monalisa
bad.still = os.path.join(os.path.dirname(still), "missing.png")
try:
    bad_result = bpy.ops.monalisa.animate()
except RuntimeError as exc:  # an operator that reports ERROR raises in background mode
    bad_result = str(exc).strip().splitlines()
print("MONALISA_JSON " + json.dumps({
    "result": sorted(result),
    "bad_result": bad_result if isinstance(bad_result, list) else sorted(bad_result),
    "strips": [{"name": s.name, "start": s.frame_final_start, "duration": s.frame_final_duration,
                "elements": [e.filename for e in s.elements], "directory": s.directory} for s in strips],
    "images": [{"path": i.filepath, "size": list(i.size)} for i in images],
    "panel": hasattr(bpy.types, "MONALISA_PT_panel"),
    "core": type(monalisa_blender.operators.core).__name__ and monalisa_blender.operators.core.__name__,
}))
monalisa_blender.unregister()
print("MONALISA_UNREGISTERED", not hasattr(bpy.types.Scene, "monalisa"))
