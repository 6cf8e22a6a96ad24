"""Faces found by turn: does YuNet find a turned head, does fkd-predict report it, and on how
many frames of a short clip does the tracker report it; and which stage turns it down.

    python bench/turned_heads.py --per-bucket 40 --face 240   # shipped weights; a 240 px face in 640x480
    python bench/turned_heads.py --held-out --per-bucket 60   # only the faces fkd-train held out
    python bench/turned_heads.py --clips                      # the shared clips, by the turn of YuNet's points
    python bench/turned_heads.py --audit-photos               # fkd-predict's candidate rule, old and new

Faces: 300-W's labelled photos (``--data``: AFW, LFPW, HELEN; 68 points mapped to fkd's 15) and
MTFL's (``--mtfl``: its AFLW and web photos, 5 hand-marked points; AFLW holds full profiles,
which 300-W's semi-frontal labels do not). The turn of a face is read from its labels: ``s`` is
where the nose tip lies between the eye centres, (d_left - d_right) / (d_left + d_right) with
d the x distance from the nose tip to each eye, 0 frontal, about sin(yaw), and beyond 1 once the
nose tip passes the far eye (a profile). fkd's own yaw (``face_state``) is not used: fit from 15
points it stops near 40 degrees on the most turned 300-W faces.

Each face is placed "close to the camera": its photo is scaled so that the labelled eye-to-mouth
height is ``--face`` x 0.4 pixels (the height it has in a ``--face``-pixel crop of fkd's), centred
in a 640x480 frame (borders repeated). On that frame: ``yunet``, a detection whose square holds
the labelled centre; ``predict``, fkd-predict's photo path (flip-averaged) reports a face there;
``clip``, the frame repeated ``--frames`` times, moving 2 px a frame, written with
cv2.VideoWriter and tracked by ``fkd.Landmarker().tracker(fps=25)`` as fkd-live tracks a file:
the share of its frames with the face reported (a face whose box holds the labelled centre); the
frames on which YuNet itself (on each decoded frame, as fkd-live's detector would see it) finds
the face, and the share of those on which the tracker reports it (the issue's measure: YuNet
sees a face, fkd does not report it), both from the fourth frame on (the first detection is
merged there: frames come one at a time, not read ahead as fkd-live reads a file); and
``nose error``, the median distance of the reported nose tip from the labelled one over the
eye-to-mouth height (the keypoints of a turned head are a best guess), and fkd's own |yaw| of
the photo's face (``face_state``, from its 15 keypoints). The stage columns follow the tracker's
decision on YuNet's first detection of the face (flip off, as fkd-live): ``s1``, the score of
the detector's crop; ``s2``, that of the crop from those keypoints; a candidate is taken when
their mean clears the threshold (realtime/tracking/tracks.py).

Most of these faces were trained on (the score head saw them as positives); ``--held-out`` keeps
only fkd-train's validation and test faces, which no run trained on.

``--clips`` (the shared clips by default with ``--clips`` alone) measures the same on video: YuNet
on every frame at full size (score >= 0.6, as bench/crowd_faces.py) is the reference, its faces
bucketed by the turn of YuNet's own five points; a face counts as reported when a face the
tracker reports on that frame has its nose tip inside its box grown by a fifth; for the faces
not reported, the scores of the two crops the tracker would judge them on.

``--audit-photos`` checks fkd-predict's rule for taking a candidate on every photo of both
sources, as they are: YuNet's candidates (as fkd-predict finds them), each scored on its
detector crop (``s1``) and on the crop from its keypoints (``s2``), counted as kept by the old
rule (s1 and s2 each at least the threshold) and by the tracker's (their mean at least the
threshold, and s2 too); the candidates only the second keeps are split into the labelled face
and others, and the others are drawn on a contact sheet (``--sheet``) to be looked at.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import fkd
from fkd.model.crop import crop_face, square_from_keypoints, to_frame
from fkd.model.detect import FaceDetector
from fkd.model.schema import INDEX, ibug68_to_kaggle15
from fkd.realtime.defaults import MIN_FACE
from fkd.realtime.tracking.pipeline import run_on, second_look
from fkd.train.data.faceset import id_bucket
from fkd.train.data.mtfl import AUX_PREFIX
from fkd.train.data.pts import face_id, find_pairs, read_pts

ROOT = Path(__file__).resolve().parents[1]
FIVE = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_left_corner", "mouth_right_corner")
#: turn buckets by |s| (about sin(yaw)): < 30 degrees, 30-60, 60-75, profile (the nose past the far eye)
BUCKETS = ((0.0, 0.5, "<30"), (0.5, 0.87, "30-60"), (0.87, 1.3, "60-75"), (1.3, 99.0, "profile"))
WIDTH, HEIGHT = 640, 480
#: faces whose id hashes below this bucket are fkd-train's validation and test faces (FaceSet.split)
HELD_OUT = 200
#: a clip's first detection is merged into its fourth frame here (frames come one at a time, not
#: read ahead as fkd-live reads a file): YuNet's finds are counted from there on
LAG = 3


def turn(five: np.ndarray) -> float:
    """``s`` of the module docstring from the five points in ``FIVE`` order (image pixels)."""
    left, right, nose = five[0, 0], five[1, 0], five[2, 0]
    dl, dr = left - nose, nose - right
    if dl + dr <= 1e-6:
        return float(np.sign(dl - dr) * 9.0)
    return float((dl - dr) / (dl + dr))


def bucket_of(s: float) -> str:
    return next(name for lo, hi, name in BUCKETS if lo <= abs(s) < hi)


def faces_300w(data: Path, held_out: bool) -> list[tuple[str, Path, np.ndarray]]:
    out = []
    for folder in ("afw", "lfpw_train", "helen_train"):
        for image, pts in find_pairs(data / folder):
            if held_out and id_bucket(face_id(data / folder, image)) >= HELD_OUT:
                continue
            p15 = ibug68_to_kaggle15(read_pts(pts))
            out.append((f"300w/{folder}", image, np.array([p15[INDEX[n]] for n in FIVE])))
    return out


def faces_mtfl(mtfl: Path, held_out: bool) -> list[tuple[str, Path, np.ndarray]]:
    out = []
    with open(mtfl / "landmarks.csv") as f:
        for row in csv.DictReader(f):
            if row["file"].startswith("lfw_5590"):
                continue  # small faces, all near frontal
            if held_out and id_bucket(AUX_PREFIX + str(Path(row["file"]).with_suffix(""))) >= HELD_OUT:
                continue
            five = np.array([(float(row[f"{n}_x"]), float(row[f"{n}_y"])) for n in FIVE])
            out.append((f"mtfl/{row['file'].split('/')[0]}", mtfl / row["file"], five))
    return out


def sample(faces: list[tuple[str, Path, np.ndarray]], per_bucket: int) -> list[tuple[str, Path, np.ndarray, float]]:
    """Up to ``per_bucket`` faces of each (source family, turn) bucket, spread evenly (deterministic)."""
    groups: dict[tuple[str, str], list] = {}
    for source, image, five in faces:
        s = turn(five)
        groups.setdefault((source.split("/")[0], bucket_of(s)), []).append((source, image, five, s))
    out = []
    for key in sorted(groups):
        members = groups[key]
        step = max(1, len(members) // per_bucket)
        out += members[::step][:per_bucket]
    return out


def place(image: np.ndarray, five: np.ndarray, face: float, dx: float = 0.0, dy: float = 0.0, x: float = 0.5
          ) -> tuple[np.ndarray, np.ndarray]:
    """The photo scaled and moved so the face is ``face`` crop pixels (eye-to-mouth 0.4 of it) with
    its centre at ``x`` of the frame's width and half its height (+ dx, dy); returns the frame
    and the five points in it."""
    eye_mouth = float(np.mean(five[3:5, 1]) - np.mean(five[0:2, 1]))
    scale = 0.4 * face / max(eye_mouth, 1.0)
    centre = five.mean(0)
    m = np.array([[scale, 0, WIDTH * x + dx - scale * centre[0]], [0, scale, HEIGHT / 2 + dy - scale * centre[1]]])
    frame = cv2.warpAffine(image, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return frame, five * scale + m[:, 2]


def holds(box: tuple[int, int, int, int] | tuple[float, ...], point: np.ndarray) -> bool:
    x, y, w, h = box
    return bool(x <= point[0] <= x + w and y <= point[1] <= y + h)


def measure(marker: fkd.Landmarker, detector: FaceDetector, image: np.ndarray, five: np.ndarray, args,
            tmp: Path) -> dict:
    frame, placed = place(image, five, args.face, x=args.x)
    centre = placed.mean(0)
    row: dict = {}
    dets = [d for d in detector.detect(frame, min_face=MIN_FACE) if holds(d.square.as_box(), centre)]
    row["yunet"] = bool(dets)
    photo = [f for f in marker.landmarks(frame) if holds(f.box, centre)]
    row["predict"] = bool(photo)
    row["yaw"] = abs(photo[0].pose.yaw) if photo and photo[0].pose is not None else None
    row["s1"] = row["s2"] = row["inside"] = None
    if dets:  # the tracker's decision on this candidate: flip off, as fkd-live
        run = marker.predictor.with_flip(False).run
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        sq = dets[0].square
        pts, s1 = run(crop_face(gray, sq)[None])
        first = to_frame(pts[0], sq)
        c = first.mean(0)
        row["inside"] = bool(0 <= c[0] < WIDTH and 0 <= c[1] < HEIGHT)
        sq2 = square_from_keypoints(first)
        _, s2 = run(crop_face(gray, sq2)[None])
        row["s1"], row["s2"] = float(s1[0]), float(s2[0])
    path = tmp / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25, (WIDTH, HEIGHT))
    centres, noses = [], []
    for k in range(args.frames):
        dx = 2.0 * k - args.frames
        shifted, pts = place(image, five, args.face, dx, dx / 4, args.x)
        writer.write(shifted)
        centres.append(pts.mean(0))
        noses.append(pts[2])
    writer.release()
    cap = cv2.VideoCapture(str(path))
    hits = first_hit = others = seen_frames = seen_hits = 0
    errors = []
    with marker.tracker(fps=25) as tracker:
        for k in range(args.frames):
            ok, bgr = cap.read()
            if not ok:
                break
            faces = tracker.update(bgr)
            hit = any(holds(f.box, centres[k]) for f in faces)
            seen = k >= LAG and any(holds(d.square.as_box(), centres[k])
                                    for d in detector.detect(bgr, min_face=MIN_FACE))
            seen_frames += seen
            seen_hits += seen and hit
            errors += [float(np.linalg.norm(np.array(f.point("nose_tip")) - noses[k])) / (0.4 * args.face)
                       for f in faces if holds(f.box, centres[k])]
            others += sum(not holds(f.box, centres[k]) for f in faces)
            hits += hit
            if hit and not first_hit:
                first_hit = k + 1
    cap.release()
    row["clip"] = hits / args.frames
    row["seen"], row["seen_hits"] = seen_frames, seen_hits
    row["first"] = first_hit or None
    row["others"] = others
    row["nose"] = float(np.median(errors)) if errors else None
    return row


def yunet_five(landmarks: np.ndarray) -> np.ndarray:
    """YuNet's five points (right eye, left eye, nose, right and left mouth corner) in ``FIVE`` order."""
    return landmarks[[1, 0, 2, 4, 3]]


def nose_in(point: np.ndarray, box: tuple[int, int, int, int], grow: float = 1.2) -> bool:
    x, y, w, h = box
    return abs(point[0] - x - w / 2) <= grow * w / 2 and abs(point[1] - y - h / 2) <= grow * h / 2


def measure_clip(marker: fkd.Landmarker, detector: FaceDetector, clip: Path) -> list[dict]:
    """One row per reference face of every frame of ``clip`` (module docstring)."""
    run = marker.predictor.with_flip(False).run
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    rows = []
    with marker.tracker(fps=fps) as tracker:
        k = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            refs = [d for d in detector.detect(bgr, min_face=20) if d.score >= 0.6]
            faces = tracker.update(bgr)
            gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            for d in refs:
                row = {"frame": k, "s": turn(yunet_five(d.landmarks)), "side": d.box[2],
                       "reported": any(nose_in(np.array(f.point("nose_tip")), d.box) for f in faces),
                       "s1": None, "s2": None}
                if not row["reported"]:
                    pts, s1 = run(crop_face(gray, d.square)[None])
                    _, s2 = run(crop_face(gray, square_from_keypoints(to_frame(pts[0], d.square)))[None])
                    row["s1"], row["s2"] = float(s1[0]), float(s2[0])
                rows.append(row)
            k += 1
    cap.release()
    return rows


def clip_table(marker: fkd.Landmarker, detector: FaceDetector, clips: list[Path]) -> None:
    thr = marker.threshold
    print("| clip | turn (YuNet's points) | reference faces | reported | not reported: s1 < thr | s2 < thr "
          "| mean < thr |")
    print("|---|---|---|---|---|---|---|")
    for clip in clips:
        rows = measure_clip(marker, detector, clip)
        for _, _, name in BUCKETS:
            group = [r for r in rows if bucket_of(r["s"]) == name]
            if not group:
                continue
            missed = [r for r in group if not r["reported"]]
            s1 = np.array([r["s1"] for r in missed])
            s2 = np.array([r["s2"] for r in missed])
            print(f"| {clip.name} | {name} | {len(group)} | {100 * (1 - len(missed) / len(group)):.1f} % "
                  f"| {int((s1 < thr).sum())} | {int((s2 < thr).sum())} | {int(((s1 + s2) / 2 < thr).sum())} |")


def audit_photos(marker: fkd.Landmarker, faces: list[tuple[str, Path, np.ndarray]], sheet: Path) -> None:
    """The module docstring's ``--audit-photos``."""
    detector = FaceDetector()
    run, thr = marker.predictor.run, marker.threshold
    counts = {"candidates": 0, "old": 0, "new": 0, "added, labelled face": 0, "added, other": 0, "dropped": 0}
    added_turns: list[float] = []
    tiles = []
    done: set[Path] = set()
    for _, path, five in faces:
        if path in done:
            continue
        done.add(path)
        image = cv2.imread(str(path))
        if image is None:
            continue
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        squares = [d.square for d in detector.detect(image, max_side=800, min_face=MIN_FACE)]
        first, s1 = run_on(run, gray, squares)
        points, s2 = second_look(run, gray, first)
        old = (s1 >= thr) & (s2 >= thr)
        new = ((s1 + s2) / 2 >= thr) & (s2 >= thr)
        counts["candidates"] += len(squares)
        counts["old"] += int(old.sum())
        counts["new"] += int(new.sum())
        counts["dropped"] += int((old & ~new).sum())
        for i in np.flatnonzero(new & ~old):
            sq = square_from_keypoints(points[i])
            if holds(sq.as_box(), five.mean(0)):
                counts["added, labelled face"] += 1
                added_turns.append(turn(five))
                continue
            counts["added, other"] += 1
            tile = cv2.cvtColor(crop_face(gray, sq), cv2.COLOR_GRAY2BGR)
            cv2.putText(tile, f"{s1[i]:.2f}/{s2[i]:.2f}", (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 255, 0), 1)
            tiles.append(tile)
    print("| " + " | ".join(counts) + " |")
    print("|" + "---|" * len(counts))
    print("| " + " | ".join(str(v) for v in counts.values()) + " |")
    by_turn = ", ".join(f"{b}: {sum(bucket_of(t) == b for t in added_turns)}" for _, _, b in BUCKETS)
    print(f"labelled faces added, by turn: {by_turn}")
    if tiles:
        rows = [np.hstack(tiles[i:i + 12] + [np.zeros_like(tiles[0])] * (12 - len(tiles[i:i + 12])))
                for i in range(0, len(tiles), 12)]
        cv2.imwrite(str(sheet), np.vstack(rows))
        print(f"the {len(tiles)} other candidates added: {sheet}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "300w")
    parser.add_argument("--mtfl", type=Path, default=ROOT.parent / "shared" / "data" / "mtfl")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--threshold", type=float, default=None, help="face score threshold (default: the weights')")
    parser.add_argument("--per-bucket", type=int, default=30, help="faces per source and turn bucket")
    parser.add_argument("--face", type=float, default=240.0, help="the face's crop side in the frame, pixels")
    parser.add_argument("--x", type=float, default=0.5,
                        help="the face's centre, as a share of the frame's width (near 0 or 1: cut by the edge)")
    parser.add_argument("--frames", type=int, default=30, help="frames of each clip")
    parser.add_argument("--held-out", action="store_true",
                        help="only the faces fkd-train holds out (validation and test buckets)")
    parser.add_argument("--audit-photos", action="store_true", help="fkd-predict's candidate rule, old and new")
    parser.add_argument("--sheet", type=Path, default=Path(tempfile.gettempdir()) / "turned_heads_added.png")
    parser.add_argument("--csv", type=Path, default=None, help="write one row per face here")
    parser.add_argument("--clips", type=Path, nargs="*", default=None,
                        help="measure these clips instead (none named: every shared clip)")
    args = parser.parse_args()

    marker = fkd.Landmarker(args.weights, threshold=args.threshold)
    detector = FaceDetector()
    if args.audit_photos:
        audit_photos(marker, faces_300w(args.data, args.held_out) + faces_mtfl(args.mtfl, args.held_out), args.sheet)
        return
    if args.clips is not None:
        clip_table(marker, detector, args.clips or sorted((ROOT.parent / "shared" / "video").glob("*.mp4")))
        return
    faces = sample(faces_300w(args.data, args.held_out) + faces_mtfl(args.mtfl, args.held_out), args.per_bucket)
    which = "held-out " if args.held_out else ""
    print(f"weights {args.weights or 'shipped'}, threshold {marker.threshold:.3f}; {len(faces)} {which}faces, "
          f"face {args.face:.0f} px in {WIDTH}x{HEIGHT}, clips of {args.frames} frames")
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for source, path, five, s in faces:
            image = cv2.imread(str(path))
            if image is None:
                continue
            row = measure(marker, detector, image, five, args, Path(tmp))
            row.update(source=source, file=str(path.name), s=round(s, 3), bucket=bucket_of(s))
            rows.append(row)
    thr = marker.threshold
    print(f"{time.perf_counter() - t0:.0f} s\n")
    print("| source | turn | faces | YuNet finds | fkd-predict reports | clip frames reported | clips with none "
          "| clip frames YuNet finds | of those reported | median s1 | median s2 | s1 < thr | s2 < thr | mean < thr "
          "| nose error | fkd's median yaw |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for family in ("300w", "mtfl"):
        for _, _, name in BUCKETS:
            group = [r for r in rows if r["source"].startswith(family) and r["bucket"] == name]
            if not group:
                continue
            found = [r for r in group if r["s1"] is not None]
            s1 = np.array([r["s1"] for r in found])
            s2 = np.array([r["s2"] for r in found])
            n = len(group)

            def pct(k: int, of: int) -> str:
                return f"{100 * k / max(of, 1):.0f} %"

            print(f"| {family} | {name} | {n} | {pct(len(found), n)} | {pct(sum(r['predict'] for r in group), n)} "
                  f"| {100 * np.mean([r['clip'] for r in group]):.0f} % | {sum(r['clip'] == 0 for r in group)} "
                  f"| {pct(sum(r['seen'] for r in group), n * (args.frames - LAG))} "
                  f"| {pct(sum(r['seen_hits'] for r in group), sum(r['seen'] for r in group))} "
                  f"| {np.median(s1) if len(s1) else float('nan'):.2f} "
                  f"| {np.median(s2) if len(s2) else float('nan'):.2f} "
                  f"| {pct(int((s1 < thr).sum()), len(found))} | {pct(int((s2 < thr).sum()), len(found))} "
                  f"| {pct(int(((s1 + s2) / 2 < thr).sum()), len(found))} "
                  f"| {np.median([r['nose'] for r in group if r['nose'] is not None] or [np.nan]):.2f} "
                  f"| {np.median([r['yaw'] for r in group if r['yaw'] is not None] or [np.nan]):.0f} |")
    print(f"\nother faces reported in the clips (other people in the photo, or false faces: look): "
          f"{sum(r['others'] for r in rows)} on {sum(r['others'] > 0 for r in rows)} clips")
    if args.csv:
        keys = ["source", "file", "s", "bucket", "yunet", "predict", "s1", "s2", "inside", "clip", "first", "others",
                "nose", "yaw", "seen", "seen_hits"]
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for r in rows:
                w.writerow({k: r[k] for k in keys})


if __name__ == "__main__":
    main()
