"""The add-on's settings, operator and panel; every decision is in the host-agnostic core.

The operator runs `monalisa render` in the background (a modal timer watches it; in background
mode, ``blender -b``, it waits), then loads the frames as an image sequence (``bpy.data.images``,
source SEQUENCE) and as an image strip in the sequencer at their frame numbers.
"""
import importlib.util
import sys
from pathlib import Path

import bpy


def _core():
    try:
        from monalisa.plugin import core
    except ImportError:  # Blender's Python has no monalisa: load the core file (standard library only)
        path = Path(__file__).resolve().parents[1] / "core.py"
        spec = importlib.util.spec_from_file_location("monalisa_plugin_core", path)
        core = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = core
        spec.loader.exec_module(core)
    return core


core = _core()
_JOBS = {}


class MonalisaSettings(bpy.types.PropertyGroup):
    still: bpy.props.StringProperty(name="Still", subtype="FILE_PATH", description="the portrait to animate")
    track: bpy.props.StringProperty(name="Track", subtype="FILE_PATH", description="track JSON from `monalisa track`")
    plate: bpy.props.StringProperty(name="Plate", subtype="FILE_PATH",
                                    description="driving movie or image sequence, when there is no track")
    identity: bpy.props.StringProperty(name="Identity", subtype="FILE_PATH", description="baked identity .onnx")
    model: bpy.props.StringProperty(name="Model", subtype="DIR_PATH", description="exported model folder")
    correction: bpy.props.StringProperty(name="Correction", description="warp models: weight 0..1 of the learned "
                                         "correction; empty = 1 with an identity, 0 without")
    out: bpy.props.StringProperty(name="Output", subtype="FILE_PATH", description="frames, e.g. //monalisa/shot.####.exr")
    frames: bpy.props.StringProperty(name="Frames", description="e.g. 1001-1100; empty = the whole track")
    device: bpy.props.EnumProperty(name="Device", items=[(d, d, d) for d in core.DEVICES])
    executable: bpy.props.StringProperty(name="monalisa", subtype="FILE_PATH",
                                         description="the monalisa command (default: $MONALISA_EXECUTABLE or PATH)")


def settings_from(props):
    values = {name: getattr(props, name) for name, *_ in core.KNOBS}
    for key in ("still", "track", "plate", "identity", "model", "out"):
        if values[key]:
            values[key] = bpy.path.abspath(values[key])
    return core.RenderSettings.from_mapping(values)


def load_result(context, job):
    """The rendered frames as an image sequence datablock and a sequencer image strip."""
    first = job.first_file()
    image = bpy.data.images.load(first, check_existing=True)
    image.source = "SEQUENCE"
    scene = context.scene
    editor = scene.sequence_editor or scene.sequence_editor_create()
    name = Path(job.settings.out).name.split(".")[0] or "monalisa"
    strip = editor.strips.new_image(name=name, filepath=first, channel=1, frame_start=job.frames[0])
    for frame in job.frames[1:]:
        strip.elements.append(Path(core.frame_path(job.settings.out, frame)).name)
    return image, strip


class MONALISA_OT_animate(bpy.types.Operator):
    """Render the portrait with monalisa and load the frames as an image sequence"""

    bl_idname = "monalisa.animate"
    bl_label = "Animate Portrait"
    bl_options = {"REGISTER"}

    _timer = None

    def _start(self, context):
        props = context.scene.monalisa
        try:
            return core.RenderJob(settings_from(props), executable=bpy.path.abspath(props.executable)
                                  if props.executable else "")
        except core.HostInputError as exc:
            self.report({"ERROR"}, f"monalisa: {exc}")
            return None

    def _finish(self, context, job):
        if job.process.returncode != 0:
            self.report({"ERROR"}, f"monalisa: render failed: {job.error()}")
            return {"CANCELLED"}
        image, strip = load_result(context, job)
        self.report({"INFO"}, f"monalisa: {len(job.frames)} frames -> {image.filepath}")
        return {"FINISHED"}

    def execute(self, context):  # blocking: scripts and background mode
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        job.wait()
        return self._finish(context, job)

    def invoke(self, context, event):  # in the UI: render in the background, keep Blender responsive
        if bpy.app.background:
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        _JOBS[self.as_pointer()] = job
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = _JOBS[self.as_pointer()]
        if event.type == "ESC":
            job.cancel()
        if event.type not in {"TIMER", "ESC"}:
            return {"PASS_THROUGH"}
        done, total, code = job.poll()
        context.workspace.status_text_set(f"monalisa: {done}/{total} frames")
        if code is None:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        del _JOBS[self.as_pointer()]
        return self._finish(context, job)


class MONALISA_PT_panel(bpy.types.Panel):
    bl_label = "monalisa"
    bl_idname = "MONALISA_PT_panel"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "monalisa"

    def draw(self, context):
        props = context.scene.monalisa
        for name in ("still", "track", "plate", "identity", "model", "correction", "out", "frames", "device",
                     "executable"):
            self.layout.prop(props, name)
        self.layout.operator(MONALISA_OT_animate.bl_idname, icon="RENDER_ANIMATION")


CLASSES = (MonalisaSettings, MONALISA_OT_animate, MONALISA_PT_panel)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.monalisa = bpy.props.PointerProperty(type=MonalisaSettings)


def unregister():
    del bpy.types.Scene.monalisa
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
