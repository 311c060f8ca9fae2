"""Realism floor of the synthetic faces, judged by OpenCV's Haar cascades (slow: `make test-all`).

Renders at 128 px with |head pitch|, |head yaw| <= 15 deg, gaze anywhere in its default 35-deg cone, random
identities and sessions (light, background, noise, blur, glasses as sampled). The frontal-face cascade
must find a face in >= 80 % of them and the eye cascade at least one eye in >= 50 %. detectMultiScale
runs with OpenCV's defaults (scaleFactor 1.1, minNeighbors 3) on the grey image.
"""
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from regaze.data.synth import PoseRanges, render, sample_identities, sample_poses, sample_sessions  # noqa: E402


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


def near_frontal_renders(n: int, *, seed: int, size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids, ses = sample_identities(n, rng), sample_sessions(n, rng)
    head, gaze = sample_poses(n, rng, PoseRanges(head_pitch_deg=15, head_yaw_deg=15, gaze_cone_deg=35))
    return render(identity=ids, session=ses, head=head, gaze=gaze, size=size)


@pytest.mark.slow
def test_haar_cascades_find_faces_and_eyes():
    face_rate, eye_rate = haar_rates(near_frontal_renders(400, seed=2024))
    print(f"Haar at 128 px, |head| <= 15 deg, 400 renders: face {face_rate:.1%}, eye {eye_rate:.1%}")
    assert face_rate >= 0.80 and eye_rate >= 0.50, (face_rate, eye_rate)
