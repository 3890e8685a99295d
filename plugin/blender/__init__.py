"""monalisa for Blender: animate a still portrait from a landmark track or a driving plate in the
Video Sequencer (sidebar > monalisa). A Blender extension (blender_manifest.toml, Blender 4.2 LTS
and later): install the zip that ``python plugin/blender/package.py`` writes (Preferences > Get
Extensions > Install from Disk), or copy the folder it writes with ``--folder``. The frames are
rendered by the `monalisa` command of the environment monalisa is installed in (set in the panel,
or $MONALISA_EXECUTABLE)."""

bl_info = {  # legacy add-on installs (Blender reads blender_manifest.toml for extensions)
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
