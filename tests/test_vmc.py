"""fkd-live --vmc: what VmcSender sends, decoded by a real python-osc server on loopback.

Each head turn is checked by what it does to the avatar, not by quaternion components: the
received rotation turns the avatar's forward (+z) and up (+y) vectors in Unity's axes (x is the
avatar's own right), and the test asks where the nose and the top of the head end up.
"""

from __future__ import annotations

import math
import queue
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from pythonosc.udp_client import UDPClient

from fkd.model.errors import FkdError
from fkd.realtime.outputs.vmc import DEFAULT_VMC, FaceChoice, HeadState, VmcSender, parse_vmc_address

Message = tuple[str, tuple[Any, ...]]


class FrameDispatcher(Dispatcher):
    """A dispatcher that hands over each datagram's messages together, as one frame."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: queue.Queue[list[Message]] = queue.Queue()
        self._datagram = threading.local()  # the threading server handles each datagram in a thread of its own
        self.set_default_handler(self._collect)

    def _collect(self, address: str, *args: Any) -> None:
        self._datagram.messages.append((address, args))

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        self._datagram.messages = []
        results = super().call_handlers_for_packet(data, client_address)
        self.frames.put(self._datagram.messages)
        return results


class Frame:
    """One received frame, looked up by OSC address."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.addresses = [address for address, _ in messages]

    def args(self, address: str) -> tuple[Any, ...]:
        found = [args for a, args in self.messages if a == address]
        assert len(found) == 1, f"{address} sent {len(found)} times in one frame"
        return found[0]

    def bone(self, name: str) -> tuple[float, ...] | None:
        found = [args[1:] for a, args in self.messages if a == "/VMC/Ext/Bone/Pos" and args[0] == name]
        return found[0] if found else None

    @property
    def blends(self) -> dict[str, float]:
        return {args[0]: args[1] for a, args in self.messages if a == "/VMC/Ext/Blend/Val"}

    @property
    def head(self) -> tuple[float, float, float, float]:
        bone = self.bone("Head")
        assert bone is not None
        assert bone[:3] == (0.0, 0.0, 0.0)
        x, y, z, w = bone[3:]
        return x, y, z, w


class Receiver:
    def __init__(self, server: ThreadingOSCUDPServer, dispatcher: FrameDispatcher) -> None:
        self.port = server.server_address[1]
        self._frames = dispatcher.frames

    def frame(self, sender: VmcSender, head: HeadState | None, time: float = 0.0) -> Frame:
        sender.send(time, head)
        return Frame(self._frames.get(timeout=5))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    dispatcher = FrameDispatcher()
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Receiver(server, dispatcher)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def open_sender(receiver: Receiver, mirror: bool = False) -> VmcSender:
    return VmcSender("127.0.0.1", receiver.port, mirror=mirror)


def rotate(q: tuple[float, float, float, float], v: tuple[float, float, float]) -> tuple[float, float, float]:
    """v turned by the unit quaternion q (x, y, z, w): v + 2w(u x v) + 2u x (u x v)."""
    x, y, z, w = q

    def cross(a: tuple[float, float, float], b: tuple[float, float, float]) -> tuple[float, float, float]:
        return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]

    u = (x, y, z)
    t = cross(u, v)
    t2 = cross(u, t)
    return tuple(v[i] + 2 * w * t[i] + 2 * t2[i] for i in range(3))  # type: ignore[return-value]


FORWARD, UP = (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)


def test_the_default_address_is_the_vmc_port_on_this_machine() -> None:
    assert parse_vmc_address(DEFAULT_VMC) == ("127.0.0.1", 39539)


@pytest.mark.parametrize(("text", "expected"), [
    ("39539", ("127.0.0.1", 39539)),
    ("host:39539", ("host", 39539)),
    ("192.168.1.20:39540", ("192.168.1.20", 39540)),
    ("[::1]:39539", ("::1", 39539)),
    (" 39539 ", ("127.0.0.1", 39539)),
])
def test_parse_vmc_address_accepts_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_vmc_address(text) == expected


@pytest.mark.parametrize("text", ["abc", "0", "70000", "", "host:", ":39539", "::1:39539", "[]:39539", "a b:1"])
def test_parse_vmc_address_refuses_in_one_sentence_naming_the_flag(text: str) -> None:
    with pytest.raises(FkdError) as caught:
        parse_vmc_address(text, flag="--vmc")
    message = str(caught.value)
    assert message.startswith(f"--vmc {text}:")
    assert message.count(". ") == 0 and message.endswith(".")
    with pytest.raises(FkdError, match=r"^--avatar "):
        parse_vmc_address(text, flag="--avatar")


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(30, 0, 0), (-30, 0, 0), (0, 20, 0), (0, -20, 0),
                                                    (0, 0, 25), (0, 0, -25), (35, -15, 10)])
def test_the_head_quaternion_is_unit_length(receiver: Receiver, yaw: float, pitch: float, roll: float) -> None:
    sender = open_sender(receiver)
    q = receiver.frame(sender, HeadState(yaw, pitch, roll)).head
    assert math.fsum(c * c for c in q) == pytest.approx(1.0, abs=1e-6)
    sender.close()


def test_a_still_head_is_the_identity(receiver: Receiver) -> None:
    sender = open_sender(receiver)
    assert receiver.frame(sender, HeadState(0.0, 0.0, 0.0)).head == pytest.approx((0.0, 0.0, 0.0, 1.0))
    sender.close()


@pytest.mark.parametrize("mirror", [False, True])
def test_yaw_turns_the_avatar_one_way_and_the_other(receiver: Receiver, mirror: bool) -> None:
    """Yaw > 0 is the nose toward the image's right edge, the person's own left: the avatar's -x (mirrored: +x)."""
    sender = open_sender(receiver, mirror)
    left = rotate(receiver.frame(sender, HeadState(30.0, 0.0, 0.0)).head, FORWARD)
    right = rotate(receiver.frame(sender, HeadState(-30.0, 0.0, 0.0)).head, FORWARD)
    own_left = 1 if mirror else -1
    assert left[0] == pytest.approx(own_left * math.sin(math.radians(30)), abs=1e-5)
    assert right[0] == pytest.approx(-own_left * math.sin(math.radians(30)), abs=1e-5)
    assert left[1] == pytest.approx(0.0, abs=1e-6) and right[1] == pytest.approx(0.0, abs=1e-6)
    sender.close()


@pytest.mark.parametrize("mirror", [False, True])
def test_pitch_up_raises_the_nose_mirrored_or_not(receiver: Receiver, mirror: bool) -> None:
    sender = open_sender(receiver, mirror)
    up = rotate(receiver.frame(sender, HeadState(0.0, 20.0, 0.0)).head, FORWARD)
    down = rotate(receiver.frame(sender, HeadState(0.0, -20.0, 0.0)).head, FORWARD)
    assert up[1] == pytest.approx(math.sin(math.radians(20)), abs=1e-5) and up[0] == pytest.approx(0.0, abs=1e-6)
    assert down[1] == pytest.approx(-math.sin(math.radians(20)), abs=1e-5)
    sender.close()


@pytest.mark.parametrize("mirror", [False, True])
def test_clockwise_roll_tilts_the_top_of_the_head_to_the_persons_left(receiver: Receiver, mirror: bool) -> None:
    """Clockwise in the image moves the top of the head toward the image's right: the person's own left."""
    sender = open_sender(receiver, mirror)
    clockwise = rotate(receiver.frame(sender, HeadState(0.0, 0.0, 25.0)).head, UP)
    anticlockwise = rotate(receiver.frame(sender, HeadState(0.0, 0.0, -25.0)).head, UP)
    own_left = 1 if mirror else -1
    assert clockwise[0] == pytest.approx(own_left * math.sin(math.radians(25)), abs=1e-5)
    assert anticlockwise[0] == pytest.approx(-own_left * math.sin(math.radians(25)), abs=1e-5)
    assert clockwise[2] == pytest.approx(0.0, abs=1e-6)  # roll alone does not move the nose
    sender.close()


def test_combined_angles_come_back_in_fkds_own_decomposition(receiver: Receiver) -> None:
    """Yaw, then pitch, then roll, as fkd decomposes a pose: each angle is read back from the rotation alone."""
    sender = open_sender(receiver)
    q = receiver.frame(sender, HeadState(35.0, -15.0, 10.0)).head
    nose, side = rotate(q, FORWARD), rotate(q, (1.0, 0.0, 0.0))
    assert math.degrees(math.atan2(-nose[0], nose[2])) == pytest.approx(35.0, abs=1e-3)  # -x: the person's left
    assert math.degrees(math.asin(nose[1])) == pytest.approx(-15.0, abs=1e-3)
    assert math.degrees(math.atan2(side[1], rotate(q, UP)[1])) == pytest.approx(10.0, abs=1e-3)
    sender.close()


EYES = {"mouth_open": 0.4, "smile": 0.7, "brow_raise": 0.2, "eye_open_left": 0.9, "eye_open_right": 0.25}


def test_expressions_go_out_as_vrm_presets_and_arkit_names_then_apply(receiver: Receiver) -> None:
    sender = open_sender(receiver)
    frame = receiver.frame(sender, HeadState(0.0, 0.0, 0.0, expression=EYES))
    assert frame.blends == pytest.approx({"A": 0.4, "jawOpen": 0.4, "Joy": 0.7, "mouthSmileLeft": 0.7,
                                          "mouthSmileRight": 0.7, "browInnerUp": 0.2,
                                          "Blink_L": 0.1, "eyeBlinkLeft": 0.1, "Blink_R": 0.75, "eyeBlinkRight": 0.75})
    blend_at = [i for i, a in enumerate(frame.addresses) if a == "/VMC/Ext/Blend/Val"]
    assert frame.addresses.index("/VMC/Ext/Blend/Apply") == len(frame.addresses) - 1 > max(blend_at)
    sender.close()


def test_mirror_swaps_left_and_right_blendshapes_only(receiver: Receiver) -> None:
    sender = open_sender(receiver, mirror=True)
    blends = receiver.frame(sender, HeadState(0.0, 0.0, 0.0, expression=EYES)).blends
    assert blends["Blink_L"] == blends["eyeBlinkLeft"] == pytest.approx(0.75)  # from the person's right eye
    assert blends["Blink_R"] == blends["eyeBlinkRight"] == pytest.approx(0.1)
    assert blends["A"] == pytest.approx(0.4) and blends["browInnerUp"] == pytest.approx(0.2)
    sender.close()


def test_values_are_clamped_to_0_1_and_eyes_are_sent_only_when_measured(receiver: Receiver) -> None:
    sender = open_sender(receiver)
    blends = receiver.frame(sender, HeadState(0.0, 0.0, 0.0, expression={
        "mouth_open": 1.4, "smile": -0.3, "brow_raise": float("nan")})).blends
    assert set(blends) == {"A", "jawOpen", "Joy", "mouthSmileLeft", "mouthSmileRight"}
    assert all(0.0 <= v <= 1.0 for v in blends.values())
    assert blends["A"] == 1.0 and blends["Joy"] == 0.0
    sender.close()


def test_status_and_relative_time_on_every_frame(receiver: Receiver) -> None:
    sender = open_sender(receiver)
    first = receiver.frame(sender, HeadState(5.0, 0.0, 0.0), time=1000.0)
    none = receiver.frame(sender, None, time=1000.25)
    again = receiver.frame(sender, HeadState(5.0, 0.0, 0.0), time=1000.5)
    assert first.args("/VMC/Ext/OK") == (1, 3, 0, 1) == again.args("/VMC/Ext/OK")
    assert [f.args("/VMC/Ext/T")[0] for f in (first, none, again)] == pytest.approx([0.0, 0.25, 0.5])
    assert first.addresses[:2] == ["/VMC/Ext/OK", "/VMC/Ext/T"]
    sender.close()


def test_no_face_says_not_tracking_and_sends_no_head(receiver: Receiver) -> None:
    sender = open_sender(receiver)
    frame = receiver.frame(sender, None)
    assert frame.args("/VMC/Ext/OK") == (1, 3, 0, 0)  # loaded, calibrated, normal mode, tracking status 0
    assert frame.addresses == ["/VMC/Ext/OK", "/VMC/Ext/T"]
    failed_fit = receiver.frame(sender, HeadState(float("nan"), 0.0, 0.0, expression=EYES))
    assert failed_fit.addresses == ["/VMC/Ext/OK", "/VMC/Ext/T"] and failed_fit.args("/VMC/Ext/OK")[3] == 0
    sender.close()


@pytest.mark.parametrize("mirror", [False, True])
def test_root_follows_the_head_from_where_it_started_in_metres(receiver: Receiver, mirror: bool) -> None:
    sender = open_sender(receiver, mirror)
    start = receiver.frame(sender, HeadState(0.0, 0.0, 0.0, position=(3.0, -2.0, 60.0)))
    assert start.args("/VMC/Ext/Root/Pos") == pytest.approx(("root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    # 10 cm toward the image's right (the person's left), 5 cm up, 20 cm nearer the camera
    moved = receiver.frame(sender, HeadState(0.0, 0.0, 0.0, position=(13.0, -7.0, 40.0))).args("/VMC/Ext/Root/Pos")
    assert moved[1:4] == pytest.approx((0.1 if mirror else -0.1, 0.05, 0.2), abs=1e-6)
    assert "/VMC/Ext/Root/Pos" not in receiver.frame(sender, HeadState(0.0, 0.0, 0.0)).addresses
    sender.recenter()
    recentred = receiver.frame(sender, HeadState(0.0, 0.0, 0.0, position=(13.0, -7.0, 40.0)))
    assert recentred.args("/VMC/Ext/Root/Pos")[1:4] == pytest.approx((0.0, 0.0, 0.0))
    sender.close()


def test_a_closed_port_raises_nothing(receiver: Receiver) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: loopback answers with ICMP port unreachable
    sender = VmcSender("127.0.0.1", closed_port)
    for i in range(500):
        sender.send(i / 30, HeadState(10.0, 5.0, -3.0, (0.0, 0.0, 60.0), EYES) if i % 7 else None)
    assert sender.sent + sender.dropped + sender.refused == 500
    assert sender.notes()[0].startswith(f"--vmc 127.0.0.1:{closed_port}: ")
    sender.close()
    sender.send(99.0, None)  # after close: nothing, and no error


@pytest.mark.parametrize(("error", "counter"), [(ConnectionRefusedError, "refused"), (BlockingIOError, "dropped")])
def test_send_errors_are_counted_not_raised(monkeypatch: pytest.MonkeyPatch, error: type[OSError],
                                            counter: str) -> None:
    def fail(self: UDPClient, content: object) -> None:
        raise error()

    monkeypatch.setattr(UDPClient, "send", fail)
    sender = VmcSender("127.0.0.1", 39539)
    for i in range(3):
        sender.send(float(i), HeadState(0.0, 0.0, 0.0))
    assert getattr(sender, counter) == 3 and sender.sent == 0
    assert f"3 {counter}" in sender.notes()[0]
    sender.close()


def test_a_host_that_does_not_resolve_is_refused_in_one_sentence() -> None:
    with pytest.raises(FkdError, match=r"^--vmc nothing\.invalid:39539: the host name nothing\.invalid could not"):
        VmcSender("nothing.invalid", 39539)


def test_an_ipv6_receiver_gets_the_frames() -> None:
    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")
    dispatcher = FrameDispatcher()
    try:
        server = ThreadingOSCUDPServer(("::1", 0), dispatcher)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        host, port = parse_vmc_address(f"[::1]:{server.server_address[1]}")
        sender = VmcSender(host, port)
        assert sender.target == f"[::1]:{port}"
        sender.send(0.0, None)
        assert Frame(dispatcher.frames.get(timeout=5)).args("/VMC/Ext/OK") == (1, 3, 0, 0)
        sender.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def box(cx: int, cy: int, size: int = 40) -> tuple[int, int, int, int]:
    return cx - size // 2, cy - size // 2, size, size


def test_face_choice_picks_the_face_nearest_the_centre() -> None:
    choice = FaceChoice()
    assert choice.choose([], 640, 480) is None
    assert choice.choose([(4, box(100, 100)), (9, box(330, 250)), (2, box(600, 240))], 640, 480) == 9


def test_face_choice_holds_its_face_while_the_track_lasts_then_switches() -> None:
    choice = FaceChoice()
    assert choice.choose([(1, box(300, 240)), (2, box(520, 240))], 640, 480) == 1
    # face 2 walks to the middle and face 1 to the edge: the avatar keeps following face 1
    assert choice.choose([(1, box(60, 240)), (2, box(320, 240))], 640, 480) == 1
    assert choice.choose([(2, box(320, 240)), (1, box(30, 240))], 640, 480) == 1
    # face 1's track ends: the most central of the others takes over, and is held in turn
    assert choice.choose([(2, box(500, 240)), (3, box(330, 240))], 640, 480) == 3
    assert choice.choose([(2, box(320, 240)), (3, box(600, 240))], 640, 480) == 3
    # no face at all: nothing is held, so the next faces are chosen afresh
    assert choice.choose([], 640, 480) is None
    assert choice.choose([(2, box(320, 240)), (3, box(600, 240))], 640, 480) == 2


def test_face_choice_breaks_ties_by_the_lowest_id() -> None:
    assert FaceChoice().choose([(8, box(220, 240)), (5, box(420, 240))], 640, 480) == 5
