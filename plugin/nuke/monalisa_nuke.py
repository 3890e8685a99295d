"""The Nuke side of the monalisa node: widgets in, widgets out. Every decision is in core.py.

A Group node with knobs for still, track (or plate), identity, model, output, frame range and
device; "Render in background" runs `monalisa render` and points the Read inside the Group at
the frames; "Write farm bundle" writes an OpenJD job bundle beside the output.
"""
import importlib.util
import sys
import threading
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


def install_menu():
    menu = nuke.menu("Nodes").addMenu("monalisa")
    menu.addCommand("Animate Portrait", "import monalisa_nuke; monalisa_nuke.create_node()")


def create_node():
    group = nuke.createNode("Group", inpanel=False)
    group.setName(NODE_CLASS, uncollide=True)
    group.addKnob(nuke.Tab_Knob("monalisa", "monalisa"))
    for name, kind, label, default, tip in core.KNOBS:
        if kind == "choice":
            knob = nuke.Enumeration_Knob(name, label, list(core.DEVICES))
        elif kind == "file":
            knob = nuke.File_Knob(name, label)
        else:
            knob = nuke.String_Knob(name, label)
        if default:
            knob.setValue(default)
        knob.setTooltip(tip)
        group.addKnob(knob)
    group.addKnob(nuke.PyScript_Knob("render", "Render in background", "import monalisa_nuke; monalisa_nuke.render(nuke.thisNode())"))
    group.addKnob(nuke.PyScript_Knob("bundle", "Write farm bundle", "import monalisa_nuke; monalisa_nuke.bundle(nuke.thisNode())"))
    group.addKnob(nuke.Text_Knob("status", "", "idle"))
    with group:
        read = nuke.nodes.Read(name=READ)
        nuke.nodes.Output().setInput(0, read)
    return group


def settings(node):
    return core.RenderSettings.from_mapping({name: node[name].value() for name, *_ in core.KNOBS})


def _point_read(node, job):
    with node:
        read = nuke.toNode(READ)
        read["file"].setValue(core.pattern_for(job.settings.out, "hash"))
        read["first"].setValue(job.frames[0])
        read["last"].setValue(job.frames[-1])
        read["reload"].execute()


def render(node):
    try:
        job = core.RenderJob(settings(node))
    except core.HostInputError as exc:
        nuke.message(f"monalisa: {exc}")
        return None
    _point_read(node, job)

    def watch():
        job.wait()
        text = "done" if job.process.returncode == 0 else f"failed: {job.error()}"
        nuke.executeInMainThread(lambda: (node["status"].setValue(text), _point_read(node, job)))

    node["status"].setValue(f"rendering {len(job.frames)} frames (log: {job.log_path})")
    threading.Thread(target=watch, daemon=True).start()
    return job


def bundle(node):
    s = settings(node)
    try:
        out = nuke.getFilename("Farm bundle folder") or ""
        if out:
            core.run_bundle(s, out)
            nuke.message(f"monalisa: farm bundle written to {out}")
    except core.HostInputError as exc:
        nuke.message(f"monalisa: {exc}")
