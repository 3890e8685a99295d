"""Run by the bpy venv's Python (tests/plugin/test_plugin_hosts.py): install the add-on as Blender does
(a folder in an add-ons path), render through its operator headless, print a JSON summary."""
import json
import os
import sys

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
still_image = bpy.data.images.load(still)
# what an artist sees: the sequencer renders the strip's frame at the still's size
frame = strips[0].frame_final_start + 2 if strips else 0
scene.render.resolution_x, scene.render.resolution_y = still_image.size
scene.render.resolution_percentage = 100
scene.view_settings.view_transform = "Standard"
scene.frame_start = scene.frame_end = scene.frame_current = frame
scene.render.use_sequencer = True
scene.render.image_settings.file_format = "PNG"
scene.render.filepath = os.path.join(os.path.dirname(out), "sequencer.png")
bpy.ops.render.render(write_still=True)
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
    "sequencer_frame": frame,
    "sequencer_png": scene.render.filepath,
    "still_size": list(still_image.size),
    "core": monalisa_blender.operators.core.__name__,
}))
monalisa_blender.unregister()
print("MONALISA_UNREGISTERED", not hasattr(bpy.types.Scene, "monalisa"))
