"""What the face is doing, from its 15 keypoints: the head's pose (yaw, pitch, roll, position) and its expressions.

Pure geometry on the keypoints (numpy and OpenCV, no network): every path that has keypoints can add it.
"""
