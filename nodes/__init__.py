"""Runtime side (no torch): image I/O, colour, landmarks, crop/paste, onnxruntime sessions."""
