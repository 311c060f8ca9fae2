"""Procedural synthetic faces with exact labels: identity and session parameter vectors (params.py), a batched
ray-cast renderer in torch (render.py and the face model beside it), and generate.py, which samples poses and
writes a dataset in the regaze layout. Imports only the leaves and regaze.data's writer.

    ids = sample_identities(n, rng); ses = sample_sessions(n, rng)
    img = render(identity=ids, session=ses, head=(n, 2) rad, gaze=(n, 2) rad, size=128)  # uint8 (n, H, W, 3)
"""
from regaze.data.synth.params import IDENTITY_PARAMS, SESSION_PARAMS, sample_identities, sample_sessions
from regaze.data.synth.render import SIZES, render
from regaze.data.synth.generate import PoseRanges, sample_dataset, sample_poses, write_synthetic_dataset

__all__ = [
    "IDENTITY_PARAMS",
    "SESSION_PARAMS",
    "SIZES",
    "sample_identities",
    "sample_sessions",
    "render",
    "PoseRanges",
    "sample_poses",
    "sample_dataset",
    "write_synthetic_dataset",
]
