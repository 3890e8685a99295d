"""Run by the bpy venv's Python: Vector Blur in Blender's compositor on a frame monalisa wrote (its
Vector output into Speed); writes the blurred image to argv[2] at argv[3] x argv[4]. Cycles renders the (empty) scene, the
compositor makes the picture."""
import sys

import bpy

frame, out, width, height = sys.argv[1:5]  # a multilayer image reports no size before use
scene = bpy.context.scene
for obj in list(bpy.data.objects):
    bpy.data.objects.remove(obj)
image = bpy.data.images.load(frame)
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.render.resolution_x, scene.render.resolution_y = int(width), int(height)
scene.render.resolution_percentage = 100
tree = bpy.data.node_groups.new("monalisa_vector_blur", "CompositorNodeTree")
scene.compositing_node_group = tree
source = tree.nodes.new("CompositorNodeImage")
source.image = image
blur = tree.nodes.new("CompositorNodeVecBlur")
blur.inputs["Z"].default_value = 1.0
blur.inputs["Samples"].default_value = 32
blur.inputs["Shutter"].default_value = 1.0
tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
output = tree.nodes.new("NodeGroupOutput")
tree.links.new(source.outputs["Combined"], blur.inputs["Image"])
tree.links.new(source.outputs["Vector"], blur.inputs["Speed"])
tree.links.new(blur.outputs["Image"], output.inputs[0])
scene.render.use_compositing = True
scene.render.image_settings.file_format = "OPEN_EXR"
scene.render.filepath = out
bpy.ops.render.render(write_still=True)
