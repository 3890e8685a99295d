"""Run by the bpy venv's Python (tests/plugin/test_plugin_hosts.py) with BLENDER_USER_RESOURCES set to a
scratch folder: install the extension zip as Blender does (Install from Disk), render through its
operator headless, drive the modal operator's logic (progress, pass-through, Esc), print a JSON summary."""
import json
import os
import sys
import time

zip_path, still, track, out, executable, first, last = sys.argv[1:8]

import bpy  # noqa: E402

installed = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
ops = sys.modules["bl_ext.user_default.monalisa.operators"]
scene = bpy.context.scene
scene.frame_start, scene.frame_end = int(first), int(last)
scene.render.fps, scene.render.fps_base = 25, 1.0
props = scene.monalisa
props.still, props.track, props.out, props.executable = still, track, out, executable
rna = props.bl_rna.properties
result = bpy.ops.monalisa.animate()
editor = scene.sequence_editor
strips = list(ops._strips(editor)) if editor else []
images = [i for i in bpy.data.images if i.source == "SEQUENCE"]
still_image = bpy.data.images.load(still)

# the modal path, event by event, on real renders
props.out = os.path.join(os.path.dirname(out), "modal", "m.####.exr")
props.use_scene_range, props.frames = False, f"{first}-{int(first) + 1}"
job = ops.start_job(bpy.context)
ops._JOBS[scene.name] = job
poll_while_rendering = bpy.ops.monalisa.animate.poll()
statuses, answers = [], []
watch = ops.Watch(job, statuses.append)
answers.append(sorted(watch.event("MOUSEMOVE")))
while True:
    answer = watch.event("TIMER")
    if answer != {"RUNNING_MODAL"}:
        answers.append(sorted(answer))
        break
    time.sleep(0.2)
del ops._JOBS[scene.name]
props.out = os.path.join(os.path.dirname(out), "cancel", "c.####.exr")
props.use_scene_range = True
cancelled = ops.start_job(bpy.context)
watch = ops.Watch(cancelled, statuses.append)
escape = watch.event("ESC")
while escape == {"RUNNING_MODAL"}:
    time.sleep(0.2)
    escape = watch.event("TIMER")

# a rendered frame in Blender's compositor: the sockets an Image node offers
frame_image = bpy.data.images.load(ops.core.frame_path(out, int(first)))
tree = bpy.data.node_groups.new("monalisa_check", "CompositorNodeTree")
image_node = tree.nodes.new("CompositorNodeImage")
image_node.image = frame_image
sockets = sorted((o.name, o.type) for o in image_node.outputs)

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
props.out = out
props.still = os.path.join(os.path.dirname(still), "missing.png")
try:
    bad_result = bpy.ops.monalisa.animate()
except RuntimeError as exc:  # an operator that reports ERROR raises in background mode
    bad_result = str(exc).strip().splitlines()
print("MONALISA_JSON " + json.dumps({
    "installed": sorted(installed),
    "result": sorted(result),
    "bad_result": bad_result if isinstance(bad_result, list) else sorted(bad_result),
    "strips": [{"name": s.name, "start": s.frame_final_start, "duration": s.frame_final_duration,
                "elements": [e.filename for e in s.elements], "directory": s.directory} for s in strips],
    "images": [{"path": i.filepath, "size": list(i.size)} for i in images],
    "panel": hasattr(bpy.types, "MONALISA_PT_panel"),
    "undo": sorted(ops.MONALISA_OT_animate.bl_options),
    "correction": [rna["correction"].type, rna["correction"].subtype, rna["correction"].soft_min,
                   rna["correction"].soft_max],
    "fps": job.settings.fps,
    "start_frame": job.settings.start_frame,
    "ocio": job.ocio,
    "poll_while_rendering": poll_while_rendering,
    "poll_after": bpy.ops.monalisa.animate.poll(),
    "modal_answers": answers,
    "modal_frames": [job.poll()[0], job.poll()[1]],
    "statuses": statuses,
    "escape": sorted(escape),
    "cancelled_done": list(cancelled.poll()[:2]),
    "sockets": sockets,
    "sequencer_frame": frame,
    "sequencer_png": scene.render.filepath,
    "still_size": list(still_image.size),
    "core": ops.core.__name__,
    "core_file": ops.core.__file__,
}))
bpy.ops.preferences.addon_disable(module="bl_ext.user_default.monalisa")
print("MONALISA_UNREGISTERED", not hasattr(bpy.types.Scene, "monalisa"))
