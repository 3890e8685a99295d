"""Nuke start-up for monalisa (add this folder to NUKE_PATH). Nothing heavy: menu.py adds the UI.

Nuke's Python needs no numpy for the node: it reaches monalisa through its host-agnostic core
(plugin/core.py, standard library only) and runs the `monalisa` command of the environment
monalisa is installed in (the node's "monalisa executable" knob, else $MONALISA_EXECUTABLE, else
`monalisa` on PATH; never Nuke's own binary).
"""
