"""monalisa: few-shot talking-head animation of a still portrait for compositing hosts.

Sub-packages (every import lives under this one namespace):

- ``monalisa.models``  training side (torch): networks, losses, data, meta-learning, fine-tuning
- ``monalisa.export``  torch -> ONNX and its checks
- ``monalisa.nodes``   runtime (no torch): image I/O, colour, landmarks, crop/paste, onnxruntime
- ``monalisa.plugin``  what hosts load: farm templates, pyblish plug-ins, Nuke and Blender entries

Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"
