"""The Nuke side of the monalisa node: widgets in, widgets out. Every decision is in core.py.

**Nodes > monalisa > Animate Portrait** makes a Group with two inputs, ``still`` (0) and ``plate``
(1). A connected input wins over its file knob: an upstream Read of a still image (or of an image
sequence, for the plate, read without a retime) is used by its file; anything else (a graded or
painted still, a movie Read, a retimed plate) is written by the Group's own Write nodes beside the
output (``NAME.still.exr`` at the current frame, in the comp's working space, which becomes the still's
colourspace unless the knob names one; ``NAME.plate.####.png`` over the range). The frame
range and fps are the comp's (Project Settings), unless overridden on the node. Every render option
is a knob of its type (correction a 0..1 slider behind a toggle, colourspace from the comp's OCIO
config). **Render** starts ``monalisa render`` in the background: a progress task and the node's
status follow it (``RenderJob.poll``), **Cancel** (or the progress task's cancel) stops it, and the
Read inside the Group shows each frame as it lands (missing frames black, not an error). **Write
farm bundle** writes an OpenJD bundle. The ``monalisa`` command: the node's *monalisa executable*
knob, else $MONALISA_EXECUTABLE, else ``monalisa`` on PATH (never Nuke's own binary).

Only these calls of Nuke's Python API are used; tests/plugin/nuke_standin/nuke.py implements exactly
them, each with the reference page its signature was checked against.
"""
import importlib.util
import os
import sys
import threading
import time
from pathlib import Path

try:
    import nuke
except ImportError:
    raise ImportError("the nuke module is not available: plugin/nuke/ runs inside Nuke "
                      "(add plugin/nuke to NUKE_PATH); use `monalisa render` outside it") from None


def _core():
    try:
        from monalisa.plugin import core
    except ImportError:  # monalisa not importable in Nuke's Python: load the core file itself
        path = Path(__file__).resolve().parents[1] / "core.py"
        spec = importlib.util.spec_from_file_location("monalisa_plugin_core", path)
        core = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = core
        spec.loader.exec_module(core)
    return core


core = _core()
NODE_CLASS = "MonalisaAnimate"
READ = "MonalisaRead"
INPUTS = ("still", "plate")  # the Group's inputs, in order
WRITES = {"still": "MonalisaWriteStill", "plate": "MonalisaWritePlate"}
DEFAULT_SPACE = "default"  # the colourspace knob's "let monalisa choose"
_JOBS = {}  # node name -> its running core.RenderJob
_HOST_KNOBS = ("frames", "fps", "start_frame")  # filled from the comp unless overridden


def install_menu():
    menu = nuke.menu("Nodes").addMenu("monalisa")
    menu.addCommand("Animate Portrait", "import monalisa_nuke; monalisa_nuke.create_node()")


def _optional(knob) -> bool:
    return knob.kind == "float" and not knob.default


def _colorspaces() -> list:
    """The comp's OCIO colour spaces (the working-space menu of the Project Settings lists them)."""
    working = nuke.root().knob("workingSpaceLUT")
    return [DEFAULT_SPACE] + (list(working.values()) if working is not None else [])


def _knob(spec):
    if spec.kind == "file":
        return nuke.File_Knob(spec.name, spec.label)
    if spec.kind == "choice":
        return nuke.Enumeration_Knob(spec.name, spec.label, list(spec.choices))
    if spec.kind == "colorspace":
        return nuke.Enumeration_Knob(spec.name, spec.label, _colorspaces())
    if spec.kind == "bool":
        return nuke.Boolean_Knob(spec.name, spec.label)
    if spec.kind == "float":
        knob = nuke.Double_Knob(spec.name, spec.label)
        knob.setRange(spec.low, spec.high)
        return knob
    return nuke.String_Knob(spec.name, spec.label)


def create_node():
    """The Animate Portrait Group: inputs still and plate, one knob per render option, buttons."""
    group = nuke.createNode("Group", inpanel=False)
    group.setName(NODE_CLASS)
    group.addKnob(nuke.Tab_Knob("monalisa", "monalisa"))
    for spec in core.KNOBS:
        if spec.name in _HOST_KNOBS:
            continue
        if _optional(spec):
            toggle = nuke.Boolean_Knob("use_" + spec.name, "set " + spec.label)
            toggle.setTooltip(f"off: monalisa's default {spec.label}")
            group.addKnob(toggle)
        knob = _knob(spec)
        if spec.kind == "bool":
            knob.setValue(spec.default == "1")
        elif spec.kind == "float":
            knob.setValue(float(spec.default) if spec.default else (1.0 if spec.high == 1.0 else spec.low))
        elif spec.default:
            knob.setValue(spec.default)
        knob.setTooltip(spec.tip + (" (a connected input wins)" if spec.name in INPUTS else ""))
        group.addKnob(knob)
    range_knob = nuke.Boolean_Knob("use_frames", "set frame range")
    range_knob.setTooltip("off: the comp's frame range (Project Settings)")
    group.addKnob(range_knob)
    group.addKnob(nuke.String_Knob("frames", "frame range"))
    group.addKnob(nuke.Boolean_Knob("use_fps", "set fps"))
    fps = nuke.Double_Knob("fps", "fps")
    fps.setRange(1.0, 120.0)
    fps.setTooltip("off: the comp's fps (Project Settings); used when the plate is tracked")
    group.addKnob(fps)
    group.addKnob(nuke.Boolean_Knob("use_start_frame", "set movie start frame"))
    start = nuke.Int_Knob("start_frame", "movie start frame")
    start.setTooltip("a movie file in the plate knob: the number of its first frame (off: the comp's first "
                     "frame); image sequences keep their own numbers")
    group.addKnob(start)
    executable = nuke.File_Knob("executable", "monalisa executable")
    executable.setTooltip("the `monalisa` command of the environment monalisa is installed in "
                          "(empty: $MONALISA_EXECUTABLE, else `monalisa` on PATH)")
    group.addKnob(executable)
    for name, label, call in (("render", "Render", "render"), ("cancel", "Cancel", "cancel"),
                              ("bundle", "Write farm bundle", "bundle")):
        group.addKnob(nuke.PyScript_Knob(name, label, f"import monalisa_nuke; monalisa_nuke.{call}(nuke.thisNode())"))
    group.addKnob(nuke.Text_Knob("status", "status", "idle"))
    with group:
        inputs = {name: nuke.nodes.Input(name=name) for name in INPUTS}
        for name, source in inputs.items():
            write = nuke.nodes.Write(name=WRITES[name])
            write.setInput(0, source)
        read = nuke.nodes.Read(name=READ)
        read["on_error"].setValue("black")  # frames not rendered yet show black, not an error
        nuke.nodes.Output().setInput(0, read)
    return group


def _comp_frames() -> str:
    root = nuke.root()
    return f"{int(root['first_frame'].value())}-{int(root['last_frame'].value())}"


def settings(node):
    """The core's settings from the node's knobs: the comp's range and fps unless overridden,
    optional numbers empty when their toggle is off (monalisa's default)."""
    values = {}
    for spec in core.KNOBS:
        if spec.name in _HOST_KNOBS:
            continue
        value = node[spec.name].value()
        if _optional(spec) and not node["use_" + spec.name].value():
            value = ""
        elif spec.kind == "bool":
            value = "1" if value else "0"
        elif spec.kind == "float":
            value = f"{float(value):g}"
        elif spec.kind == "colorspace" and value == DEFAULT_SPACE:
            value = ""
        values[spec.name] = value
    values["frames"] = node["frames"].value() if node["use_frames"].value() else _comp_frames()
    values["fps"] = f"{float(node['fps'].value() if node['use_fps'].value() else nuke.root()['fps'].value()):g}"
    first = node["start_frame"].value() if node["use_start_frame"].value() else nuke.root()["first_frame"].value()
    values["start_frame"] = str(int(first))
    return core.RenderSettings.from_mapping(values)


def _has_frame_token(path: str) -> bool:
    return any(t in Path(path).name for t in ("#", "%", "@"))


def _upstream_file(up, sequence: bool) -> str:
    """The file of an upstream Read usable as it is: a still (no frame token) for the still, an
    image sequence read without a retime for the plate; else ""."""
    if up is None or up.Class() != "Read":
        return ""
    path = up["file"].value()
    if sequence:
        return path if _has_frame_token(path) and not up["frame"].value() else ""
    return "" if _has_frame_token(path) else path


def prepare_inputs(node, s):
    """``s`` with still and plate taken from the node's connected inputs: an upstream Read's own
    file when usable as it is, else the input written by the Group's Write beside the output."""
    values = s.to_dict()
    out = Path(os.path.expanduser(s.out)).absolute() if s.out else None
    base = out.with_name(out.name.split(".")[0]) if out else None
    for index, name in enumerate(INPUTS):
        up = node.input(index)
        if up is None:
            continue
        direct = _upstream_file(up, sequence=name == "plate")
        if direct:
            values[name] = direct
            continue
        if base is None:
            raise core.HostInputError(f"the {name} input is not a Read of a file; set the output first so "
                                      f"monalisa can write it beside the frames")
        target = str(base.with_name(base.name + (".still.exr" if name == "still" else ".plate.####.png")))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with node:
            write = nuke.toNode(WRITES[name])
            write["file"].setValue(target)
            write["file_type"].setValue("exr" if name == "still" else "png")
            if name == "still":
                nuke.execute(write, nuke.frame(), nuke.frame())
            else:
                frames = core.parse_frames(values["frames"])
                nuke.execute(write, frames[0], frames[-1])
        values[name] = target
        working = nuke.root().knob("workingSpaceLUT")
        if name == "still" and not values["colorspace"] and working is not None:
            values["colorspace"] = working.value()  # the Write wrote the comp's working space
    if values["plate"] and values["track"]:
        values["track"] = ""  # a connected plate wins over a track file
    return core.RenderSettings.from_mapping(values)


def _ocio_config() -> str:
    """The comp's OCIO config file when it names one (a custom config), else $OCIO, else ""."""
    root = nuke.root()
    custom = root.knob("customOCIOConfigPath")
    if root.knob("OCIO_config") is not None and root["OCIO_config"].value() == "custom" and custom is not None:
        return custom.value()
    return os.environ.get("OCIO", "")


def _point_read(node, job):
    with node:
        read = nuke.toNode(READ)
        read["file"].setValue(core.pattern_for(job.settings.out, "hash"))
        for knob in ("first", "origfirst"):
            read[knob].setValue(job.frames[0])
        for knob in ("last", "origlast"):
            read[knob].setValue(job.frames[-1])
        read["reload"].execute()


def _show(node, job, text):
    """Main thread: the node's status and its Read's frames (reloaded as they land)."""
    node["status"].setValue(text)
    _point_read(node, job)


def status_line(job, done: int, total: int, code) -> str:
    if code is None:
        return "tracking the plate" if job.stage == "track" else f"rendering: {done}/{total} frames"
    if job.cancelled:
        return f"cancelled at {done}/{total} frames (re-render to resume)"
    return f"done: {total} frames" if code == 0 else f"failed: {job.error()}"


def watch(node, job, interval: float = 0.5):
    """In a worker thread: follow ``job`` with a progress task until it ends; the progress task's
    cancel cancels the job. Node updates go through nuke.executeInMainThread."""
    task = nuke.ProgressTask(f"monalisa {node.name()}")
    seen = None
    try:
        while True:
            done, total, code = job.poll()
            if task.isCancelled():
                job.cancel()
            if (done, code, job.stage) != seen:
                seen = (done, code, job.stage)
                text = status_line(job, done, total, code)
                task.setMessage(text)
                task.setProgress(int(100 * done / max(total, 1)))
                nuke.executeInMainThread(_show, (node, job, text))
            if code is not None:
                return code
            time.sleep(interval)
    finally:
        _JOBS.pop(node.name(), None)  # whatever happened, the node can render again


def render(node, wait: bool = False):
    """Start the render of ``node`` in the background (``wait``: block until it ends, for scripts)."""
    if node.name() in _JOBS:
        nuke.message(f"monalisa: {node.name()} is already rendering; Cancel it first")
        return None
    try:
        s = prepare_inputs(node, settings(node))
        job = core.RenderJob(s, executable=node["executable"].value(), ocio=_ocio_config())
    except core.HostInputError as exc:
        nuke.message(f"monalisa: {exc}")
        return None
    _JOBS[node.name()] = job
    _show(node, job, f"starting {len(job.frames)} frames (log: {job.log_path})")
    thread = threading.Thread(target=watch, args=(node, job), daemon=True)
    thread.start()
    if wait:
        thread.join()
    return job


def cancel(node):
    """Stop the node's render; frames already written stay (a re-render resumes)."""
    job = _JOBS.get(node.name())
    if job is None:
        node["status"].setValue("idle: nothing to cancel")
        return None
    job.cancel()
    return job


def bundle(node):
    """Write an OpenJD farm bundle for the node's settings into a folder the artist picks."""
    try:
        out = nuke.getFilename("Farm bundle folder")
        if out:
            s = prepare_inputs(node, settings(node))  # every knob travels: the job's parameters
            core.run_bundle(s, out, executable=node["executable"].value(), ocio=_ocio_config())
            nuke.message(f"monalisa: farm bundle written to {out}")
            return out
    except core.HostInputError as exc:
        nuke.message(f"monalisa: {exc}")
    return None
