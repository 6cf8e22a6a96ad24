"""``fkd-live --vmc [HOST:]PORT``: one face's head and expressions to avatar apps, in the VMC protocol.

VSeeFace, VNyan, Warudo and VMagicMirror receive the VMC protocol (OSC over UDP, default port
39539); fkd plays the sending side. Each frame goes out as one OSC bundle built by python-osc, so
one datagram carries one consistent frame (under 1 kB):

- ``/VMC/Ext/OK 1 3 0 T``: a model is loaded and calibrated, in normal mode; ``T`` is the tracking
  status the spec added in v2.7, 1 while a face is tracked and 0 when there is none. A frame with
  no face sends only this and the time, so the receiver keeps its last pose or runs its own idle.
- ``/VMC/Ext/T t``: seconds since this sender's first frame (relative, as the spec asks; sent as a
  float32, it stays within a millisecond for the first two hours, where a clock's epoch would not).
- ``/VMC/Ext/Root/Pos "root" p q``: how far the head has moved since the first frame that gave a
  position (see ``recenter``), so leaning moves the avatar; the rotation is the identity. Only
  sent when ``HeadState.position`` is given: leave it None to keep the avatar where the app put it.
- ``/VMC/Ext/Bone/Pos "Head" 0 0 0 q``: the head's rotation. The message has room for the bone's
  local position too, which a face tracker does not know (it is the avatar's neck length); like
  other face-only senders, fkd sends zeros. A receiver that applies every bone's position as well
  as its rotation (EVMC4U's "bone position synchronize", on by default there) would pull the head
  down onto the neck, so that option must be off for fkd.
- ``/VMC/Ext/Blend/Val name v`` for each blendshape, then ``/VMC/Ext/Blend/Apply``.

Axes. VMC carries Unity's left-handed axes: x right, y up, z forward, from the avatar's point of
view (its own right hand is at +x, and it faces +z). A rotation of +θ about
an axis maps forward to right about y (turns the head to its own right), forward to down about x
(nods down), and up to the avatar's left about z (tilts the top of its head to its own left). The
head's quaternion is Ry(-yaw) * Rx(-pitch) * Rz(roll), the same order as fkd's own decomposition
R = Ry(yaw) Rx(-pitch) Rz(-roll) (in image axes), with x reflected: fkd's pose is in image terms,
where the image's right edge is the person's own left.

Mirror. Without it, the avatar moves its own left side when the person moves theirs: seen in the
avatar app it looks like the raw camera image. With ``mirror=True`` it does what a mirror image
of the person would: yaw and roll change sign, the root moves the other way along x, and left and
right blendshapes swap (the person's left eye drives ``Blink_R`` and ``eyeBlinkRight``). Pitch,
the mouth and the brows do not change. Pass fkd's pose as the records give it (unmirrored); the
window's ``m`` key is a separate choice.

Blendshapes, all 0..1: VRM 0.x presets (case-sensitive, as the spec warns) ``A`` (mouth open),
``Joy`` (smile), ``Blink_L`` / ``Blink_R``, and ARKit's perfect-sync names ``jawOpen``,
``mouthSmileLeft`` / ``mouthSmileRight`` (fkd has one smile, so both get it), ``browInnerUp``,
``eyeBlinkLeft`` / ``eyeBlinkRight``. Left and right are the avatar's own, as both VRM and ARKit
name them; a blink is 1 minus the eye's openness and is sent only when the model measures eyes.

A closed or unreachable port never slows or stops the loop: the socket is non-blocking, the host
is resolved once at start, and a send the kernel cannot take at once or the network refuses is
counted and dropped.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient

from fkd.model.errors import FkdError, UsageError
from fkd.realtime.defaults import VMC_HOST, VMC_PORT

#: Where VMC receivers (the spec's "Marionette") listen by default: a bare PORT means this machine.
DEFAULT_HOST = VMC_HOST
DEFAULT_VMC = f"{VMC_HOST}:{VMC_PORT}"

_ADDRESS = re.compile(r"(?:(?P<host>\[[^\]\s]+\]|[^:\[\]\s/]+):)?(?P<port>\d{1,6})")

#: /VMC/Ext/OK's loaded, calibration state (3: calibrated) and calibration mode (0: normal).
_LOADED, _CALIBRATED, _NORMAL_MODE = 1, 3, 0

Quaternion = tuple[float, float, float, float]  # x, y, z, w, as Unity orders them


def parse_vmc_address(text: str, flag: str = "--vmc") -> tuple[str, int]:
    """(host, port) of ``[HOST:]PORT``; a bare port means this machine, where avatar apps usually run."""
    match = _ADDRESS.fullmatch(text.strip())
    if not match:
        raise UsageError(f"{flag} {text}: give [HOST:]PORT, such as 39539, 192.168.1.20:39539 or [::1]:39539.")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise UsageError(f"{flag} {text}: the port must be from 1 to 65535 (avatar apps listen on 39539 by default).")
    return (match["host"].strip("[]") if match["host"] else DEFAULT_HOST), port


@dataclass(frozen=True)
class HeadState:
    """What fkd knows of one face, in its records' terms (the sender converts to the avatar's).

    Angles in degrees, image terms: yaw > 0 when the nose turns toward the image's right edge,
    pitch > 0 nose up, roll > 0 clockwise as seen in the image. ``position`` is the head's centre
    in cm in OpenCV's camera frame (x right, y down, z away from the camera). ``expression``
    holds 0..1 values: ``mouth_open``, ``smile``, ``brow_raise`` and, when the model measures
    eyes, ``eye_open_left`` / ``eye_open_right`` (the person's own sides; 1 open, 0 shut).
    """

    yaw: float
    pitch: float
    roll: float
    position: tuple[float, float, float] | None = None
    expression: dict[str, float] = field(default_factory=dict)


class FaceChoice:
    """Which face the avatar follows: the one nearest the frame's centre, held while its track lasts.

    Holding matters more than being central: switching to whoever steps nearer the middle would
    make the avatar jump between people. The choice is made again only when the held track ends.
    """

    def __init__(self) -> None:
        self.held: int | None = None

    def choose(self, faces: Sequence[tuple[int, tuple[int, int, int, int]]], width: int, height: int) -> int | None:
        """The track id to send, from this frame's (track id, box x, y, w, h); None when there is no face."""
        if self.held is not None and any(track == self.held for track, _ in faces):
            return self.held
        cx, cy = width / 2, height / 2

        def off_centre(face: tuple[int, tuple[int, int, int, int]]) -> tuple[float, int]:
            track, (x, y, w, h) = face
            return math.hypot(x + w / 2 - cx, y + h / 2 - cy), track  # the id breaks ties, for repeatability

        self.held = min(faces, key=off_centre)[0] if faces else None
        return self.held


def _mul(a: Quaternion, b: Quaternion) -> Quaternion:
    """The Hamilton product a * b (rotate by b, then by a), components in x, y, z, w order."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz)


def _about(axis: int, degrees: float) -> Quaternion:
    half = math.radians(degrees) / 2
    q = [0.0, 0.0, 0.0, math.cos(half)]
    q[axis] = math.sin(half)
    return q[0], q[1], q[2], q[3]


def head_rotation(yaw: float, pitch: float, roll: float, mirror: bool = False) -> Quaternion:
    """The Head bone's rotation in Unity's axes for fkd's image-terms angles (the module's docstring says why)."""
    if mirror:
        yaw, roll = -yaw, -roll
    return _mul(_mul(_about(1, -yaw), _about(0, -pitch)), _about(2, roll))


def blendshapes(expression: dict[str, float], mirror: bool = False) -> dict[str, float]:
    """VRM preset and ARKit values for fkd's expressions, clamped to 0..1; missing or non-finite ones are left out."""
    def value(key: str) -> float | None:
        v = expression.get(key)
        return None if v is None or not math.isfinite(v) else min(max(float(v), 0.0), 1.0)

    out: dict[str, float] = {}
    for key, names in (("mouth_open", ("A", "jawOpen")), ("smile", ("Joy", "mouthSmileLeft", "mouthSmileRight")),
                       ("brow_raise", ("browInnerUp",))):
        v = value(key)
        if v is not None:
            out.update(dict.fromkeys(names, v))
    eyes = {"left": "eye_open_left", "right": "eye_open_right"}
    if mirror:
        eyes = {"left": "eye_open_right", "right": "eye_open_left"}
    for side, key in eyes.items():
        v = value(key)
        if v is not None:
            out[f"Blink_{side[0].upper()}"] = out[f"eyeBlink{side.title()}"] = 1.0 - v
    return out


def _message(address: str, *args: str | int | float) -> OscMessage:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build()


class VmcSender:
    """Sends one face per frame to a VMC receiver at host:port, never waiting on the network."""

    def __init__(self, host: str, port: int, *, mirror: bool = False) -> None:
        self.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.mirror = mirror
        try:
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError):
            raise FkdError(f"--vmc {self.target}: the host name {host} could not be resolved.") from None
        try:  # a numeric address, so no send ever waits on a name lookup; the client's socket is non-blocking
            self._client: UDPClient | None = UDPClient(str(address[0]), port, family=family)
        except OSError as e:
            raise FkdError(f"--vmc {self.target}: cannot open a UDP socket ({e.strerror or e}).") from None
        self._start: float | None = None
        self._origin: tuple[float, float, float] | None = None
        self.sent = self.dropped = self.refused = 0

    def recenter(self) -> None:
        """Take the next frame's head position as the avatar's resting place (the root's zero)."""
        self._origin = None

    def send(self, time: float, head: HeadState | None) -> None:
        """One frame: the head and expressions, or "not tracking" when ``head`` is None; ``time`` in seconds."""
        if self._client is None:
            return
        if self._start is None:
            self._start = time
        if head is not None and not all(math.isfinite(a) for a in (head.yaw, head.pitch, head.roll)):
            head = None  # a failed fit: better no pose than a NaN quaternion
        bundle = OscBundleBuilder(IMMEDIATELY)
        bundle.add_content(_message("/VMC/Ext/OK", _LOADED, _CALIBRATED, _NORMAL_MODE, int(head is not None)))
        bundle.add_content(_message("/VMC/Ext/T", float(time - self._start)))
        if head is not None:
            root = self._root(head.position)
            if root is not None:
                bundle.add_content(_message("/VMC/Ext/Root/Pos", "root", *root, 0.0, 0.0, 0.0, 1.0))
            q = head_rotation(head.yaw, head.pitch, head.roll, self.mirror)
            bundle.add_content(_message("/VMC/Ext/Bone/Pos", "Head", 0.0, 0.0, 0.0, *q))
            for name, value in blendshapes(head.expression, self.mirror).items():
                bundle.add_content(_message("/VMC/Ext/Blend/Val", name, value))
            bundle.add_content(_message("/VMC/Ext/Blend/Apply"))
        try:
            self._client.send(bundle.build())
        except (BlockingIOError, InterruptedError):
            self.dropped += 1  # the socket's buffer is full: waiting would hold up the frame loop
        except OSError:
            self.refused += 1  # e.g. ECONNREFUSED after an ICMP "port unreachable": nothing listens yet
        else:
            self.sent += 1

    def _root(self, position: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        """The head's move since the origin, in metres and the avatar's axes; None without a usable position.

        OpenCV's camera frame has x right, y down, z away from the camera; the person faces the
        camera, so moving toward the image's right is moving to their own left (the avatar's -x,
        or +x mirrored), up is -y, and toward the camera is forward (+z).
        """
        if position is None or not all(math.isfinite(c) for c in position):
            return None
        if self._origin is None:
            self._origin = position
        dx, dy, dz = (c - o for c, o in zip(position, self._origin))
        return (dx if self.mirror else -dx) / 100, -dy / 100, -dz / 100

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def notes(self) -> list[str]:
        """One line for the run's summary: frames sent, and any dropped or refused."""
        line = f"--vmc {self.target}: {self.sent} frames sent"
        unsent = [(self.dropped, "dropped because the socket was full"),
                  (self.refused, "refused (is the avatar app listening on that port?)")]
        extra = [f"{n} {why}" for n, why in unsent if n]
        return [line + (", " + ", ".join(extra) if extra else "") + "."]
