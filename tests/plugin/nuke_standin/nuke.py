"""A small stand-in of Nuke's ``nuke`` module: exactly the calls plugin/nuke/monalisa_nuke.py makes,
no more (anything else raises AttributeError), with the signatures of Nuke's Python API reference.
It is no substitute for Nuke: it renders Read -> (Grade) -> Write with OpenImageIO and plain sRGB
maths, runs executeInMainThread calls when the test pumps them, and its ProgressTask is cancelled
by the test. Where each signature was checked (learn.foundry.com/nuke/developers/...):

- menu(name) -> Menu; Menu.addMenu(name); Menu.addCommand(name, command): 113/pythonreference/nuke-module.html
  (classes Menu, MenuItem; the module list of 122/pythonreference/toc-nuke-module.html)
- createNode(node, args, inpanel) -> Node: 131/pythondevguide/_autosummary/nuke.createNode.html
  (16.0 names the 2nd argument ``knobs``; the plug-in passes ``inpanel`` by keyword only)
- nodes.<Class>(**knobs): 10.5/pythondevguide/basics.html ("nuke.nodes.nodename(...)")
- Node.Class(), name(), addKnob(k), input(i), setInput(i, node), knob(name), node[name],
  setName(name, ...), ``with group:`` (Group.begin/end): 113/pythonreference/nuke.Node-class.html,
  160/pythondevguide/_autosummary/nuke.Root.Class.html (Group.begin)
- Tab_Knob, File_Knob, String_Knob, Boolean_Knob, Double_Knob, Int_Knob, Text_Knob (name, label[, text])
  (the classes: 122/pythonreference/toc-nuke-module.html; Int_Knob: 122/ndkdevguide/knobs-and-handles/knobtypes.html);
  Enumeration_Knob(name, label, items) and .values(): 120/pythonreference/nuke.Enumeration_Knob-class.html;
  PyScript_Knob(name, label=None, command=None) and Script_Knob.execute(): 132/pythondevguide/_autosummary/
  nuke.PyScript_Knob.html; Knob.setValue/value/setTooltip: 80/pythonreference/nuke.String_Knob-class.html,
  70/pythonreference/nuke.File_Knob-class.html, 70/pythonreference/nuke.Boolean_Knob-class.html;
  Array_Knob.setRange (min, max): 120/pythonreference/nuke.Array_Knob-class.html (listed, no argument
  names on the stored page; NDK SetRange(f, minimum, maximum): 160/ndkdevguide/knobs-and-handles/knobflags.html)
- root() knobs first_frame, last_frame, fps: reference_guide/other_nodes/root.html; workingSpaceLUT,
  OCIO_config, customOCIOConfigPath: NOT confirmed on a stored page (looked up with Node.knob, None-safe)
- Read knobs file, first, last, origfirst, origlast, frame, on_error, reload: 11.1/content/reference_guide/
  image_nodes/read.html (file, first, ...; on_error/"missing frames" values error/black/checkerboard/
  nearest frame not confirmed on a stored page); Write knobs file, file_type
- toNode(name), thisNode(), message(prompt): 132/pythondevguide/_autosummary/nuke.message.html
- getFilename(message, pattern=None, default=None, favorites=None, type=None, multiple=False):
  132/pythondevguide/_autosummary/nuke.getFilename.html
- execute(nameOrNode, start, end, incr, views, continueOnError=False): 130/pythondevguide/_autosummary/nuke.render.html
- executeInMainThread(call, args=(), kwargs={}): 140/pythondevguide/_modules/nuke_internal/executeInMain.html
- ProgressTask(name) with isCancelled(), setMessage(s), setProgress(i): 131/pythondevguide/_autosummary/
  nuke.ProgressTask.html (17.1 adds maximum, flags)
- frame(f): 150/pythondevguide/_autosummary/nuke.frame.html (deprecated there: "Use Root.frame")
"""
from __future__ import annotations

import queue
import re

import numpy as np

_MAIN = queue.Queue()  # executeInMainThread calls, run by pump()
STATE = {"this": None, "filename": None, "messages": [], "cancel_progress": False, "frame": 1, "executed": [], "tasks": []}


class Knob:
    def __init__(self, name, label=None, value=""):
        self._name, self._label, self._value, self._tip = name, label, value, ""

    def name(self):
        return self._name

    def value(self):
        return self._value

    def setValue(self, value):
        self._value = value

    def setTooltip(self, s):
        self._tip = s


class Tab_Knob(Knob):
    pass


class File_Knob(Knob):
    pass


class String_Knob(Knob):
    pass


class Text_Knob(Knob):
    def __init__(self, name, label=None, text=""):
        super().__init__(name, label, text)


class Boolean_Knob(Knob):
    def __init__(self, name, label=None, value=False):
        super().__init__(name, label, bool(value))

    def setValue(self, b):
        self._value = bool(b)


class Double_Knob(Knob):
    def __init__(self, name, label=None):
        super().__init__(name, label, 0.0)
        self.range = (0.0, 1.0)

    def setRange(self, f1, f2):
        self.range = (float(f1), float(f2))

    def setValue(self, value):
        self._value = float(value)


class Int_Knob(Knob):
    def __init__(self, name, label=None):
        super().__init__(name, label, 0)

    def setValue(self, value):
        self._value = int(value)


class Enumeration_Knob(Knob):
    def __init__(self, name, label, items):
        super().__init__(name, label, items[0] if items else "")
        self._items = list(items)

    def values(self):
        return list(self._items)

    def setValue(self, item):
        if item not in self._items:
            raise ValueError(f"{self._name}: {item!r} is not one of {self._items}")
        self._value = item


class PyScript_Knob(Knob):
    def __init__(self, name, label=None, command=None):
        super().__init__(name, label, command or "")
        self.node = None

    def execute(self):
        STATE["this"] = self.node
        exec(self._value, {"nuke": __import__(__name__)})


class _Reload(Knob):  # the Read's reload button
    def __init__(self, node):
        super().__init__("reload")
        self.node, self.count = node, 0

    def execute(self):
        self.count += 1


class Node:
    def __init__(self, cls, parent=None, **knobs):
        self._class, self._knobs, self._inputs, self._parent, self._children = cls, {}, {}, parent, []
        self._name = knobs.pop("name", f"{cls}{len(parent._children) + 1 if parent else 1}")
        for name, value in _CLASS_KNOBS.get(cls, {}).items():
            self._knobs[name] = Knob(name, name, value)
        if cls == "Read":
            self._knobs["reload"] = _Reload(self)
        for name, value in knobs.items():
            self._knobs.setdefault(name, Knob(name, name)).setValue(value)
        if parent is not None:
            if cls == "Input":
                self._knobs["number"] = Knob("number", "number", sum(c.Class() == "Input" for c in parent._children))
            parent._children.append(self)

    def Class(self):
        return self._class

    def name(self):
        return self._name

    def setName(self, name, uncollide=True, updateExpressions=False):
        self._name = name

    def addKnob(self, k):
        if isinstance(k, PyScript_Knob):
            k.node = self
        self._knobs[k.name()] = k

    def knob(self, p):
        return self._knobs.get(p)

    def __getitem__(self, name):
        return self._knobs[name]

    def input(self, i):
        return self._inputs.get(i)

    def setInput(self, i, node):
        self._inputs[i] = node
        return True

    def __enter__(self):  # Group.begin()
        _CONTEXT.append(self)
        return self

    def __exit__(self, *exc):  # Group.end()
        _CONTEXT.pop()
        return False


_CLASS_KNOBS = {
    "Read": {"file": "", "first": 1, "last": 1, "origfirst": 1, "origlast": 1, "frame": "", "on_error": "error"},
    "Write": {"file": "", "file_type": ""},
    "Grade": {"multiply": 1.0},
}
_ROOT = Node("Root", None, name="root")
for _k, _v in (("first_frame", 1), ("last_frame", 100), ("fps", 24.0), ("OCIO_config", "nuke-default"),
               ("customOCIOConfigPath", "")):
    _ROOT.addKnob(Knob(_k, _k, _v))
_ROOT.addKnob(Enumeration_Knob("workingSpaceLUT", "working space", ["scene_linear", "lin_rec709", "ACEScg", "srgb_tx"]))
_ROOT["workingSpaceLUT"].setValue("lin_rec709")  # what this stand-in's Reads and Writes compute in
_CONTEXT = [_ROOT]


class _Nodes:
    def __getattr__(self, cls):
        return lambda **knobs: Node(cls, _CONTEXT[-1], **knobs)


nodes = _Nodes()


class _Menu:
    def __init__(self, name):
        self.name, self.items = name, {}

    def addMenu(self, name):
        return self.items.setdefault(name, _Menu(name))

    def addCommand(self, name, command=None):
        self.items[name] = command


MENUS = {}


def menu(name):
    return MENUS.setdefault(name, _Menu(name))


def createNode(node, args=None, inpanel=True):
    return Node(node, _ROOT)


def root():
    return _ROOT


def toNode(name):
    return next((n for n in _CONTEXT[-1]._children if n.name() == name), None)


def thisNode():
    return STATE["this"]


def frame(f=None):
    if f is not None:
        STATE["frame"] = int(f)
    return STATE["frame"]


def message(prompt):
    STATE["messages"].append(prompt)


def getFilename(message, pattern=None, default=None, favorites=None, type=None, multiple=False):
    return STATE["filename"]


def executeInMainThread(call, args=(), kwargs={}):
    if not isinstance(args, tuple):
        args = (args,)
    _MAIN.put((call, args, dict(kwargs)))


def pump():
    """Test side: run what worker threads asked the main thread to do (Nuke's event loop)."""
    ran = 0
    while not _MAIN.empty():
        call, args, kwargs = _MAIN.get()
        call(*args, **kwargs)
        ran += 1
    return ran


class ProgressTask:
    def __init__(self, name):
        self.name, self.messages, self.progress = name, [], []
        STATE["tasks"].append(self)

    def isCancelled(self):
        return STATE["cancel_progress"]

    def setMessage(self, s):
        self.messages.append(s)

    def setProgress(self, i):
        self.progress.append(int(i))


# --- rendering, as far as the plug-in's Writes need it ----------------------------------------

def _srgb_to_linear(x):
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x):
    x = np.clip(x, 0.0, None)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def _frame_file(path, f):
    m = re.search(r"(#+|%0?(\d*)d)", path)
    if not m:
        return path
    width = len(m.group(1)) if m.group(1)[0] == "#" else int(m.group(2) or 0)
    return path[: m.start()] + f"{f:0{width}d}" + path[m.end():]


def _pixels(node, f):
    """float32 (H, W, 3) linear: what ``node`` outputs at frame ``f``."""
    import cv2
    import OpenImageIO as oiio

    cls = node.Class()
    if cls == "Input":
        group = node._parent
        return _pixels(group.input(node["number"].value()), f)
    if cls == "Grade":
        return _pixels(node.input(0), f) * float(node["multiply"].value())
    if cls == "Read":
        path = node["file"].value()
        if path.lower().endswith((".mp4", ".mov")):  # Nuke numbers a movie's frames from 1
            cap = cv2.VideoCapture(path)
            cap.set(cv2.CAP_PROP_POS_FRAMES, f - 1)
            ok, bgr = cap.read()
            cap.release()
            assert ok, f"{path}: no frame {f}"
            return _srgb_to_linear(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
        buf = oiio.ImageBuf(_frame_file(path, f))
        pix = buf.get_pixels(oiio.FLOAT)[..., :3]
        return pix if path.lower().endswith(".exr") else _srgb_to_linear(pix)
    raise NotImplementedError(f"the stand-in cannot render a {cls}")


def execute(nameOrNode, start=None, end=None, incr=1, views=None, continueOnError=False):
    import OpenImageIO as oiio

    write = toNode(nameOrNode) if isinstance(nameOrNode, str) else nameOrNode
    start = int(_ROOT["first_frame"].value() if start is None else start)
    end = int(_ROOT["last_frame"].value() if end is None else end)
    for f in range(start, end + 1, incr):
        linear = _pixels(write.input(0), f).astype(np.float32)
        path = _frame_file(write["file"].value(), f)
        if write["file_type"].value() == "exr":
            out, fmt = linear, oiio.HALF
        else:
            out, fmt = np.round(_linear_to_srgb(linear) * 255).clip(0, 255).astype(np.uint8), oiio.UINT8
        spec = oiio.ImageSpec(out.shape[1], out.shape[0], 3, fmt)
        o = oiio.ImageOutput.create(path)
        assert o.open(path, spec), o.geterror()
        o.write_image(np.ascontiguousarray(out))
        o.close()
        STATE["executed"].append((write.name(), f))
