"""What an estimator reading of an image is compared with: the rows of the angle tables (DESIGN §4).

A reading is the independent estimator's {"gaze", "head"} (n, 2) rad for n images (estimator/network.py).
Every gaze error is given in two frames (issue 12):
  camera frame    the angle between the read and the wanted gaze directions, as the labels are stored;
  head-relative   the same for the gaze in head coordinates (geometry.gaze_in_head: the read gaze in the read
                  head's frame against the wanted gaze in the wanted head's frame): where the eyes point in
                  the face, what the eye region shows.
A model whose eyes follow the head (eye-in-head kept when only the head should change) has a large
camera-frame gaze change but a head-relative gaze unchanged from the source; unreadable eyes are wrong in
both; a wrong head with well-placed eyes is wrong in the camera frame only.

Each function returns {row name: (n,) degrees}; the names end in _deg and say the frame (_head_rel_).
"""
from __future__ import annotations

import numpy as np

from regaze.geometry import angular_error_deg, gaze_in_head

__all__ = ["err_deg", "head_relative", "label_rows", "redirection_rows", "gaze_only_rows", "head_only_rows"]


def err_deg(a, b) -> np.ndarray:
    """(n, 2), (n, 2) pitch/yaw rad -> (n,) degrees between the two directions."""
    return angular_error_deg(np.asarray(a, np.float64), np.asarray(b, np.float64))


def head_relative(gaze, head) -> np.ndarray:
    """(n, 2) camera-frame gaze, (n, 2) head, rad -> (n, 2) gaze in head coordinates, rad."""
    return gaze_in_head(np.asarray(gaze, np.float64), np.asarray(head, np.float64))


def label_rows(reading: dict, *, gaze, head) -> dict[str, np.ndarray]:
    """A reading against labels (gaze, head (n, 2) rad): gaze in both frames and head."""
    return {"gaze_err_deg": err_deg(reading["gaze"], gaze),
            "gaze_head_rel_err_deg": err_deg(head_relative(reading["gaze"], reading["head"]), head_relative(gaze, head)),
            "head_err_deg": err_deg(reading["head"], head)}


def redirection_rows(reading: dict, *, gaze, head, real: dict) -> dict[str, np.ndarray]:
    """A redirected output's reading against the target labels (gaze, head: ST-ED protocol) and against the
    reading `real` of the real target image (GazeNeRF protocol)."""
    st_ed = label_rows(reading, gaze=gaze, head=head)
    gazenerf = label_rows(reading, gaze=real["gaze"], head=real["head"])
    return {**{f"st_ed_{k}": v for k, v in st_ed.items()}, **{f"gazenerf_{k}": v for k, v in gazenerf.items()}}


def gaze_only_rows(reading: dict, *, gaze, head, source: dict) -> dict[str, np.ndarray]:
    """A gaze-only output (target gaze, kept head (n, 2) rad): gaze error in both frames, and how far the read
    head moved from the reading of the source image `source` (0 = disentangled)."""
    return {"gaze_only_gaze_err_deg": err_deg(reading["gaze"], gaze),
            "gaze_only_gaze_head_rel_err_deg": err_deg(head_relative(reading["gaze"], reading["head"]),
                                                       head_relative(gaze, head)),
            "gaze_only_head_change_deg": err_deg(reading["head"], source["head"])}


def head_only_rows(reading: dict, *, gaze, head, source: dict) -> dict[str, np.ndarray]:
    """A head-only output (kept camera-frame gaze, target head (n, 2) rad): head error; the read gaze's change
    from the source reading in the camera frame (0 = disentangled); its head-relative error to the target;
    and its head-relative change from the source (0 = the gaze followed the head instead of staying put)."""
    rel = head_relative(reading["gaze"], reading["head"])
    return {"head_only_head_err_deg": err_deg(reading["head"], head),
            "head_only_gaze_change_deg": err_deg(reading["gaze"], source["gaze"]),
            "head_only_gaze_head_rel_err_deg": err_deg(rel, head_relative(gaze, head)),
            "head_only_gaze_head_rel_change_deg": err_deg(rel, head_relative(source["gaze"], source["head"]))}
