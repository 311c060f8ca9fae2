"""Procedural synthetic faces with exact labels: identity and session parameter vectors (params.py), a batched
ray-cast renderer in torch (render.py and the face model beside it), and generate.py, which samples poses and
writes a dataset in the regaze layout. Imports only the leaves and regaze.data's writer.

    ids = sample_identities(n, rng); ses = sample_sessions(n, rng)
    img = render(identity=ids, session=ses, head=(n, 2) rad, gaze=(n, 2) rad, size=128)  # uint8 (n, H, W, 3)

render_view() renders the same faces in any pinhole camera (head anywhere, roll allowed); camera_frame.py samples
such scenes in a webcam frame with exact landmarks and applies the data normalization to them exactly.
"""
from regaze.data.synth.params import IDENTITY_PARAMS, SESSION_PARAMS, sample_identities, sample_sessions
from regaze.data.synth.render import SIZES, render, render_view
from regaze.data.synth.generate import PoseRanges, sample_dataset, sample_poses, write_synthetic_dataset
from regaze.data.synth.camera_frame import (
    MEAN_FACE_LANDMARKS_HEAD, face_landmarks_head, normalized_view, sample_camera_frame_scenes,
)

__all__ = [
    "IDENTITY_PARAMS",
    "SESSION_PARAMS",
    "SIZES",
    "sample_identities",
    "sample_sessions",
    "render",
    "render_view",
    "PoseRanges",
    "sample_poses",
    "sample_dataset",
    "write_synthetic_dataset",
    "sample_camera_frame_scenes",
    "normalized_view",
    "face_landmarks_head",
    "MEAN_FACE_LANDMARKS_HEAD",
]
