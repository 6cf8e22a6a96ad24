"""The end of a run: the weights file and its int8 ONNX twin, the face score's calibration, and
the report's pictures.
"""
