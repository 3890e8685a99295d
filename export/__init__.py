"""torch -> ONNX: embedder, generator and identity-baked generator, with built-in verification."""
