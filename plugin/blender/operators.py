"""The extension's settings, operator and panel; every decision is in the host-agnostic core.

The operator runs `monalisa render` in the background (a modal timer watches it through
:class:`Watch`; in background mode, ``blender -b``, it waits), then loads the frames as an image
sequence (``bpy.data.images``, source SEQUENCE) and as an image strip in the sequencer at their
frame numbers. The frame range and fps are the scene's unless overridden; colour space names are
Blender's own (its OCIO config is handed to monalisa). Runs on Blender 4.2 LTS and later.
"""
import importlib.util
import os
import sys
from pathlib import Path

import bpy


def _core():
    """The host-agnostic core: monalisa's own when importable, else the ``core.py`` packed into the
    extension (zip or copied folder, see plugin/blender/package.py), else the repository's
    ``plugin/core.py`` (this folder linked into Blender from a checkout)."""
    try:
        from monalisa.plugin import core
        return core
    except ImportError:
        pass
    here = Path(__file__).resolve().parent
    for path in (here / "core.py", here.parent / "core.py"):
        if path.is_file():
            spec = importlib.util.spec_from_file_location("monalisa_plugin_core", path)
            core = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = core
            spec.loader.exec_module(core)
            return core
    raise ImportError(f"monalisa: core.py is missing from {here}; install the extension zip built by "
                      "plugin/blender/package.py")


core = _core()
_JOBS = {}  # scene name -> the job rendering for it (one at a time per scene)


def _colorspaces(props, context, text):
    """Blender's colour space names (its OCIO config), for the colourspace field's search."""
    items = bpy.types.ColorManagedInputColorspaceSettings.bl_rna.properties["name"].enum_items
    return [i.identifier for i in items if text.lower() in i.identifier.lower()]


def _property(knob):
    common = {"name": knob.label.capitalize(), "description": knob.tip}
    if knob.kind == "file":
        return bpy.props.StringProperty(subtype="DIR_PATH" if knob.name == "model" else "FILE_PATH", **common)
    if knob.kind == "choice":
        return bpy.props.EnumProperty(items=[(c, c, c) for c in knob.choices], default=knob.default, **common)
    if knob.kind == "bool":
        return bpy.props.BoolProperty(default=knob.default == "1", **common)
    if knob.kind == "int":
        return bpy.props.IntProperty(min=int(knob.low), default=int(knob.default or knob.low), **common)
    if knob.kind == "float":
        factor = (knob.low, knob.high) == (0.0, 1.0)
        default = float(knob.default) if knob.default else (1.0 if factor else 24.0)
        return bpy.props.FloatProperty(min=knob.low, max=knob.high, default=default,
                                       subtype="FACTOR" if factor else "NONE", **common)
    if knob.kind == "colorspace":
        return bpy.props.StringProperty(search=_colorspaces, **common)
    return bpy.props.StringProperty(**common)


def _optional(knob) -> bool:
    """A float without a default: shown with a toggle (unset: monalisa's default, fps: the scene's)."""
    return knob.kind == "float" and not knob.default


_SCENE = ("frames", "fps", "start_frame")  # the scene's unless overridden
_ANNOTATIONS = {}
for _knob in core.KNOBS:
    if _knob.name in _SCENE:
        continue  # the scene's, unless overridden below
    _ANNOTATIONS[_knob.name] = _property(_knob)
    if _optional(_knob):
        _ANNOTATIONS["use_" + _knob.name] = bpy.props.BoolProperty(name=f"Set {_knob.label}", default=False)
_ANNOTATIONS.update({
    "use_scene_range": bpy.props.BoolProperty(name="Scene frame range", default=True,
                                              description="render the scene's frame range (else the field below)"),
    "frames": bpy.props.StringProperty(name="Frames", description="e.g. 1001-1100; empty = the whole track"),
    "use_fps": bpy.props.BoolProperty(name="Set fps", default=False,
                                      description="override the scene's frame rate for tracking the plate"),
    "fps": bpy.props.FloatProperty(name="Fps", min=1.0, max=240.0, default=24.0,
                                   description="frame rate of the plate, used when it is tracked (smoothing)"),
    "use_start_frame": bpy.props.BoolProperty(name="Set movie start frame", default=False,
                                              description="override the scene's first frame as a movie plate's"),
    "start_frame": bpy.props.IntProperty(name="Movie start frame", min=0, default=1,
                                         description="a movie plate's first frame number (image sequences keep "
                                         "their own)"),
    "executable": bpy.props.StringProperty(name="monalisa", subtype="FILE_PATH", description="the monalisa "
                                           "command of the environment monalisa is installed in (default: "
                                           "$MONALISA_EXECUTABLE, else `monalisa` on PATH)"),
})
MonalisaSettings = type("MonalisaSettings", (bpy.types.PropertyGroup,), {"__annotations__": _ANNOTATIONS})


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def settings_from(props, scene):
    """The core's settings from the panel: the scene's range and fps unless overridden."""
    values = {}
    for knob in core.KNOBS:
        if knob.name in _SCENE:
            continue
        value = getattr(props, knob.name)
        if _optional(knob) and not getattr(props, "use_" + knob.name):
            value = ""
        elif knob.kind == "bool":
            value = "1" if value else "0"
        elif knob.kind == "float":
            value = f"{value:g}"
        elif knob.kind == "file" and value:
            value = bpy.path.abspath(value)
        values[knob.name] = value
    values["frames"] = f"{scene.frame_start}-{scene.frame_end}" if props.use_scene_range else props.frames
    values["fps"] = f"{props.fps if props.use_fps else scene_fps(scene):g}"
    values["start_frame"] = str(props.start_frame if props.use_start_frame else scene.frame_start)
    return core.RenderSettings.from_mapping(values)


def ocio_config() -> str:
    """The OCIO config Blender uses: $OCIO, else the one it ships."""
    bundled = Path(bpy.utils.resource_path("LOCAL")) / "datafiles" / "colormanagement" / "config.ocio"
    return os.environ.get("OCIO") or (str(bundled) if bundled.is_file() else "")


def start_job(context):
    """A started :class:`core.RenderJob` for the scene's settings (HostInputError when unusable)."""
    props = context.scene.monalisa
    executable = bpy.path.abspath(props.executable) if props.executable else ""
    return core.RenderJob(settings_from(props, context.scene), executable=executable, ocio=ocio_config())


def _strips(editor):
    """The sequencer's strips: ``strips`` from Blender 4.4, ``sequences`` before (4.2, 4.3)."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def load_result(context, job):
    """The rendered frames as an image sequence datablock and a sequencer image strip."""
    first = job.first_file()
    image = bpy.data.images.load(first, check_existing=True)
    image.source = "SEQUENCE"
    scene = context.scene
    editor = scene.sequence_editor or scene.sequence_editor_create()
    name = Path(job.settings.out).name.split(".")[0] or "monalisa"
    strip = _strips(editor).new_image(name=name, filepath=first, channel=1, frame_start=job.frames[0])
    for frame in job.frames[1:]:
        strip.elements.append(Path(core.frame_path(job.settings.out, frame)).name)
    return image, strip


class Watch:
    """The modal operator's logic, apart from Blender's window and timer: one event in, the
    operator's answer out; ``status`` shows progress (None clears it)."""

    def __init__(self, job, status):
        self.job, self.status = job, status

    def event(self, kind: str) -> set:
        if kind == "ESC":
            self.job.cancel()
        elif kind != "TIMER":
            return {"PASS_THROUGH"}
        done, total, code = self.job.poll()
        if code is None:
            step = "tracking the plate" if self.job.stage == "track" else f"{done}/{total} frames"
            self.status(f"monalisa: {step} (Esc cancels)")
            return {"RUNNING_MODAL"}
        self.status(None)
        return {"FINISHED"} if code == 0 else {"CANCELLED"}


class MONALISA_OT_animate(bpy.types.Operator):
    """Render the portrait with monalisa and load the frames as an image sequence"""

    bl_idname = "monalisa.animate"
    bl_label = "Animate Portrait"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        scene = context.scene
        return scene is not None and hasattr(scene, "monalisa") and scene.name not in _JOBS

    def _start(self, context):
        try:
            return start_job(context)
        except core.HostInputError as exc:
            self.report({"ERROR"}, f"monalisa: {exc}")
            return None

    def _finish(self, context, job):
        if job.cancelled:
            self.report({"WARNING"}, f"monalisa: cancelled; frames written so far stay in {Path(job.first_file()).parent}")
            return {"CANCELLED"}
        if job.poll()[2] != 0:
            self.report({"ERROR"}, f"monalisa: render failed: {job.error()}")
            return {"CANCELLED"}
        image, _strip = load_result(context, job)
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
        self._scene = context.scene.name
        _JOBS[self._scene] = job
        self._watch = Watch(job, context.workspace.status_text_set)
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        answer = self._watch.event(event.type)
        if answer & {"RUNNING_MODAL", "PASS_THROUGH"}:
            return answer
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context, _JOBS.pop(self._scene))


class MONALISA_PT_panel(bpy.types.Panel):
    bl_label = "monalisa"
    bl_idname = "MONALISA_PT_panel"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "monalisa"

    def draw(self, context):
        props, layout = context.scene.monalisa, self.layout
        for knob in core.KNOBS:
            if knob.name in _SCENE:
                continue
            if _optional(knob):
                row = layout.row()
                row.prop(props, "use_" + knob.name, text="")
                row.active = getattr(props, "use_" + knob.name)
                row.prop(props, knob.name)
            else:
                layout.prop(props, knob.name)
        layout.prop(props, "use_scene_range")
        row = layout.row()
        row.enabled = not props.use_scene_range
        row.prop(props, "frames")
        row = layout.row()
        row.prop(props, "use_fps", text="")
        row.active = props.use_fps
        row.prop(props, "fps")
        row = layout.row()
        row.prop(props, "use_start_frame", text="")
        row.active = props.use_start_frame
        row.prop(props, "start_frame")
        layout.prop(props, "executable")
        layout.operator(MONALISA_OT_animate.bl_idname, icon="RENDER_ANIMATION")


CLASSES = (MonalisaSettings, MONALISA_OT_animate, MONALISA_PT_panel)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.monalisa = bpy.props.PointerProperty(type=MonalisaSettings)


def unregister():
    del bpy.types.Scene.monalisa
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
