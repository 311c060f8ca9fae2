"""Realism floor of the synthetic faces, judged by OpenCV's Haar cascades (slow: `make test-all`).

Renders at 128 px with |head pitch|, |head yaw| <= 15 deg, gaze anywhere in its default 35-deg cone, random
identities and sessions (light, background, noise, blur, glasses as sampled). The frontal-face cascade
must find a face in >= 80 % of them and the eye cascade at least one eye in >= 50 %. detectMultiScale
runs with OpenCV's defaults (scaleFactor 1.1, minNeighbors 3) on the grey image.

The test prints both rates (and records them as junit properties); run as a script to write them with the
machine description to benchmarks/results/synth_realism.json:

    .venv/bin/python tests/test_synth_realism.py
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from regaze.data.synth import PoseRanges, render, sample_identities, sample_poses, sample_sessions  # noqa: E402

N_RENDERS, SEED, SIZE = 400, 2024, 128
FACE_FLOOR, EYE_FLOOR = 0.80, 0.50
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "synth_realism.json"


def haar_rates(images: np.ndarray) -> tuple[float, float]:
    """uint8 (n, H, W, 3) RGB -> (fraction with a face, fraction with at least one eye)."""
    face = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    eye = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_eye.xml")
    faces = eyes = 0
    for image in images:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        faces += len(face.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=3)) > 0
        eyes += len(eye.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=3)) > 0
    return faces / len(images), eyes / len(images)


def near_frontal_renders(n: int, *, seed: int, size: int = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids, ses = sample_identities(n, rng), sample_sessions(n, rng)
    head, gaze = sample_poses(n, rng, PoseRanges(head_pitch_deg=15, head_yaw_deg=15, gaze_cone_deg=35))
    return render(identity=ids, session=ses, head=head, gaze=gaze, size=size)


def _message(face_rate: float, eye_rate: float) -> str:
    return (f"Haar at {SIZE} px, |head| <= 15 deg, {N_RENDERS} renders (seed {SEED}): face {face_rate:.1%} "
            f"(floor {FACE_FLOOR:.0%}), eye {eye_rate:.1%} (floor {EYE_FLOOR:.0%})")


@pytest.mark.slow
def test_haar_cascades_find_faces_and_eyes(capsys, record_property):
    face_rate, eye_rate = haar_rates(near_frontal_renders(N_RENDERS, seed=SEED))
    record_property("haar_face_rate", face_rate)
    record_property("haar_eye_rate", eye_rate)
    with capsys.disabled():  # shown even under -q
        print("\n" + _message(face_rate, eye_rate))
    assert face_rate >= FACE_FLOOR and eye_rate >= EYE_FLOOR, (face_rate, eye_rate)


if __name__ == "__main__":
    sys.path.insert(0, str(RESULTS.parents[2]))
    import torch

    from benchmarks.machine import describe

    torch.set_num_threads(1)
    t0 = time.time()
    face_rate, eye_rate = haar_rates(near_frontal_renders(N_RENDERS, seed=SEED))
    result = {"benchmark": "synth_realism", "command": "python tests/test_synth_realism.py",
              "test": "pytest -m slow tests/test_synth_realism.py",
              "summary": {"face_rate": round(face_rate, 4), "eye_rate": round(eye_rate, 4),
                          "face_floor": FACE_FLOOR, "eye_floor": EYE_FLOOR,
                          "passes": face_rate >= FACE_FLOOR and eye_rate >= EYE_FLOOR},
              "protocol": {"renders": N_RENDERS, "seed": SEED, "size": SIZE, "head_pitch_yaw_max_deg": 15,
                           "gaze_cone_deg": 35, "cascades": ["haarcascade_frontalface_default", "haarcascade_eye"],
                           "detect": {"scaleFactor": 1.1, "minNeighbors": 3}, "opencv": cv2.__version__},
              "seconds": round(time.time() - t0, 1), "machine": describe()}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(_message(face_rate, eye_rate))
