"""monalisa for Blender: animate a still portrait from a landmark track or a driving plate in the
Video Sequencer (sidebar > monalisa). Install by linking or copying this folder into Blender's
add-ons as ``monalisa_blender``; the frames are rendered by the `monalisa` command of the
environment monalisa is installed in (set in the panel, or $MONALISA_EXECUTABLE)."""

bl_info = {
    "name": "monalisa",
    "author": "monalisa",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "Video Sequencer > Sidebar > monalisa",
    "description": "Animate a still portrait from a tracked plate (few-shot talking head)",
    "category": "Sequencer",
}


def register():
    from . import operators

    operators.register()


def unregister():
    from . import operators

    operators.unregister()
