"""The embedded backend: an int8 ONNX sentence model run in-process."""
