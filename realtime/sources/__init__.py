"""Where frames come from: video files, cameras, network streams and image files, each opened
with one-sentence refusals and read frame by frame.
"""
