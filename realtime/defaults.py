"""Settings of fkd-live that its --help shows, in a module that imports nothing heavy.

typer reads these when it builds the command line, before any command runs; keeping them out of
the modules that import cv2 lets ``fkd-live --help`` start without OpenCV (bench/startup.py).
"""

#: Frames between requests on a video file while faces are held (fkd-live --detect-every).
DETECT_EVERY = 30

#: Most faces tracked at once (fkd-live --max-faces): a crowd's dozen still make one batched
#: model call per frame.
MAX_FACES = 16

#: Smallest face side looked for, in frame pixels (--min-face): the detector's frame is shrunk
#: until such a face is YuNet's smallest reliable size, so a larger value is cheaper
#: (model.detect.detection_scale; bench/RESULTS.md).
MIN_FACE = 20

#: --camera accepts 0..MAX_CAMERA: OpenCV crashes on -1 and overflows past 2**31 (V4L2 numbers devices
#: well below this; OpenCV reads indices of 100 and more as a backend choice plus an index).
MAX_CAMERA = 9999

#: Seconds a network stream has to open, and then to send each frame, before it counts as not
#: answering (fkd-live --timeout); a camera gets the same to open.
STREAM_TIMEOUT = 10.0

#: Reopen attempts, with backoff, after a live source breaks off (fkd-live --reconnect); the count
#: starts again once the source gives a frame, so a flapping server cannot keep a run going forever.
RECONNECTS = 5

#: The camera's vertical field of view in degrees, which sets the focal length of the head pose's
#: camera model (fkd-live and fkd-predict --fov): MediaPipe's assumption, so that the two compare.
FOV = 63.0

#: Where fkd-live --vmc sends when given no address: VSeeFace's, VNyan's, Warudo's and
#: VMagicMirror's default VMC port on this machine.
VMC_HOST = "127.0.0.1"
VMC_PORT = 39539
