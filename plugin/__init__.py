"""What hosts load: farm templates, pyblish plug-ins, Nuke and Blender entry files."""
