"""Frame -> faces: background detection, tracks re-cropped from their own keypoints, one batched
model call per frame, and the One Euro smoothing of what it says.
"""
