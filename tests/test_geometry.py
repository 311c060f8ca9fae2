"""Angle conventions (DESIGN §2) and the rotation of patent claim 3, checked against SciPy."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from regaze.geometry import (
    angular_error_deg,
    head_matrix_to_pitchyaw,
    pitchyaw_to_vector,
    relative_rotation,
    rotation_matrix,
    vector_to_pitchyaw,
)

CASES = settings(max_examples=1000, deadline=None)
pitch = st.floats(-math.pi / 2 + 1e-3, math.pi / 2 - 1e-3, allow_nan=False)
yaw = st.floats(-math.pi + 1e-3, math.pi - 1e-3, allow_nan=False)
angle_any = st.floats(-4.0, 4.0, allow_nan=False)


def _scipy_r(p, y):
    # Claim 3: R = R_y(yaw) . R_x(pitch). Extrinsic "xy" applies x first, then y: R_y @ R_x.
    return Rotation.from_euler("xy", [p, y]).as_matrix()


@CASES
@given(p=angle_any, y=angle_any)
def test_rotation_matrix_matches_scipy_and_is_proper(p, y):
    r = rotation_matrix(np.array([p, y]))
    np.testing.assert_allclose(r, _scipy_r(p, y), atol=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-12)
    rt = rotation_matrix(torch.tensor([p, y], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(rt, r, atol=1e-12)


@CASES
@given(p1=angle_any, y1=angle_any, p2=angle_any, y2=angle_any, p3=angle_any, y3=angle_any)
def test_relative_rotations_compose_and_invert(p1, y1, p2, y2, p3, y3):
    a, b, c = np.array([p1, y1]), np.array([p2, y2]), np.array([p3, y3])
    r_ab, r_bc, r_ac = relative_rotation(a, b), relative_rotation(b, c), relative_rotation(a, c)
    np.testing.assert_allclose(r_bc @ r_ab, r_ac, atol=1e-10)
    np.testing.assert_allclose(relative_rotation(b, a), r_ab.T, atol=1e-12)
    np.testing.assert_allclose(r_ab @ relative_rotation(b, a), np.eye(3), atol=1e-10)
    expected = Rotation.from_matrix(_scipy_r(*b)) * Rotation.from_matrix(_scipy_r(*a)).inv()
    np.testing.assert_allclose(r_ab, expected.as_matrix(), atol=1e-10)
    np.testing.assert_allclose(r_ab @ rotation_matrix(a), rotation_matrix(b), atol=1e-10)


@CASES
@given(p=pitch, y=yaw)
def test_vector_pitchyaw_round_trip(p, y):
    py = np.array([p, y])
    v = pitchyaw_to_vector(py)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(vector_to_pitchyaw(v), py, atol=1e-9)
    vt = pitchyaw_to_vector(torch.tensor(py))
    np.testing.assert_allclose(vector_to_pitchyaw(vt).numpy(), py, atol=1e-9)
    np.testing.assert_allclose(vector_to_pitchyaw(3.7 * v), py, atol=1e-9)  # any length


def test_convention_anchor_points():
    # (0, 0) looks straight into the camera: the gaze vector points at -z (towards the camera).
    np.testing.assert_allclose(pitchyaw_to_vector(np.zeros(2)), [0, 0, -1], atol=1e-15)
    # Positive pitch = looking up; image y points down, so g_y < 0.
    assert pitchyaw_to_vector(np.array([0.3, 0.0]))[1] < 0
    # Positive yaw: g_x < 0 (towards the subject's left as seen from the camera, i.e. image left).
    assert pitchyaw_to_vector(np.array([0.0, 0.3]))[0] < 0


@CASES
@given(p=pitch, y=yaw)
def test_pitch_sign_of_rotation_versus_vector_convention(p, y):
    """DESIGN §2: R(p, y) e_z = (cos p sin y, -sin p, cos p cos y) = -pitchyaw_to_vector((-p, y))."""
    rz = rotation_matrix(np.array([p, y])) @ np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(rz, [math.cos(p) * math.sin(y), -math.sin(p), math.cos(p) * math.cos(y)], atol=1e-12)
    np.testing.assert_allclose(rz, -pitchyaw_to_vector(np.array([-p, y])), atol=1e-12)
    # ... which is NOT the gaze vector of (p, y) unless p == 0: rotating real directions with R flips pitch.
    if abs(p) > 1e-3:
        assert not np.allclose(-rz, pitchyaw_to_vector(np.array([p, y])), atol=1e-6)


@CASES
@given(p=pitch, y=yaw)
def test_head_matrix_convention(p, y):
    """A head rotated so its z axis (out of the back of the head) is -face_direction reads back (p, y)."""
    face_dir = pitchyaw_to_vector(np.array([p, y]))  # the face points to -z
    z = -face_dir
    # Build any rotation whose third column is z.
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    yv = np.cross(z, x)
    m = np.stack([x, yv, z], axis=1)
    np.testing.assert_allclose(head_matrix_to_pitchyaw(m), [math.asin(z[1]), math.atan2(z[0], z[2])], atol=1e-9)
    # The face direction -z has the gaze form: head (p, y) faces along pitchyaw_to_vector((p, y)).
    np.testing.assert_allclose(head_matrix_to_pitchyaw(m), [p, y], atol=1e-9)


@CASES
@given(p1=pitch, y1=yaw, p2=pitch, y2=yaw)
def test_angular_error_matches_scipy(p1, y1, p2, y2):
    a, b = np.array([p1, y1]), np.array([p2, y2])
    va, vb = pitchyaw_to_vector(a), pitchyaw_to_vector(b)
    expected = math.degrees(Rotation.align_vectors([va], [vb])[0].magnitude())
    assert angular_error_deg(a, b) == pytest.approx(expected, abs=1e-4)
    assert float(angular_error_deg(torch.tensor(a), torch.tensor(b))) == pytest.approx(expected, abs=1e-4)
    assert angular_error_deg(va, vb, is_vector=True) == pytest.approx(expected, abs=1e-4)


def test_angular_error_gradient_is_finite_at_zero():
    a = torch.tensor([[0.1, -0.2], [0.3, 0.4]], requires_grad=True)
    err = angular_error_deg(a, a.detach().clone())
    err.sum().backward()
    assert torch.isfinite(a.grad).all()
    assert float(err.detach().max()) < 0.05  # clamp margin: a few hundredths of a degree at most
    v = torch.tensor([[0.0, 0.0, -1.0]], requires_grad=True)
    angular_error_deg(v, torch.tensor([[0.0, 0.0, -1.0]]), is_vector=True).sum().backward()
    assert torch.isfinite(v.grad).all()


def test_batched_shapes():
    py = torch.zeros(4, 5, 2)
    assert pitchyaw_to_vector(py).shape == (4, 5, 3)
    assert rotation_matrix(py).shape == (4, 5, 3, 3)
    assert relative_rotation(py, py).shape == (4, 5, 3, 3)
    assert angular_error_deg(py, py).shape == (4, 5)


def test_head_relative_gaze_agrees_between_numpy_and_torch_and_round_trips():
    from regaze.geometry import gaze_in_camera, gaze_in_head, head_to_camera

    rng = np.random.default_rng(3)
    head = rng.uniform(-0.8, 0.8, (40, 2))
    gaze = head + rng.uniform(-0.5, 0.5, (40, 2))
    g_np = gaze_in_head(gaze, head)
    g_t = gaze_in_head(torch.from_numpy(gaze), torch.from_numpy(head)).numpy()
    np.testing.assert_allclose(g_np, g_t, atol=1e-12)
    np.testing.assert_allclose(gaze_in_camera(g_np, head), gaze, atol=1e-9)
    np.testing.assert_allclose(head_to_camera(head), head_to_camera(torch.from_numpy(head)).numpy(), atol=1e-12)
    assert np.allclose(gaze_in_head(head, head), 0.0, atol=1e-9)  # looking where the face points


# ------------------------------------------------------------------ canonical_pitchyaw (the estimators' branch)
def test_canonical_pitchyaw_keeps_the_direction_and_lands_in_the_label_range():
    from regaze.geometry import canonical_pitchyaw

    rng = np.random.default_rng(0)
    raw = rng.uniform(-3 * np.pi, 3 * np.pi, size=(2000, 2))
    can = canonical_pitchyaw(raw)
    assert np.all(np.abs(can[:, 0]) <= np.pi / 2 + 1e-12)
    assert np.all((can[:, 1] >= -np.pi) & (can[:, 1] < np.pi))
    np.testing.assert_allclose(pitchyaw_to_vector(can), pitchyaw_to_vector(raw), atol=1e-9)


def test_canonical_pitchyaw_leaves_in_range_angles_bit_for_bit_and_fixes_the_other_branch():
    from regaze.geometry import canonical_pitchyaw

    inside = torch.tensor([[0.3, -0.7], [-1.5, 3.0], [0.0, 0.0]])
    assert torch.equal(canonical_pitchyaw(inside), inside)
    other = torch.stack([math.pi - inside[:, 0], inside[:, 1] + math.pi], -1)  # the same directions
    assert not torch.allclose(rotation_matrix(other), rotation_matrix(inside), atol=1e-3)  # rotations differ
    torch.testing.assert_close(canonical_pitchyaw(other), inside, atol=1e-5, rtol=0)


def test_canonical_pitchyaw_passes_gradients():
    from regaze.geometry import canonical_pitchyaw

    raw = torch.tensor([[-3.5, -3.0], [0.2, 0.1]], requires_grad=True)
    canonical_pitchyaw(raw).sum().backward()
    assert torch.equal(raw.grad.abs(), torch.ones_like(raw))


def test_auxiliary_estimates_are_on_the_labels_branch():
    from regaze.config import ModelConfig
    from regaze.model.redirector import Redirector

    torch.manual_seed(0)
    model = Redirector(ModelConfig(image_size=32, k=8, channel_max=32, flat_channels=8, estimator_hidden=16)).eval()
    with torch.no_grad():  # push the gaze estimator's output far onto the other branch
        model.decomposition.gaze_estimator[-1].bias.copy_(torch.tensor([-3.3, -3.1]))
        feats = model.encode(torch.rand(4, 3, 32, 32) * 2 - 1)
    assert feats.gaze_est[:, 0].abs().max() <= math.pi / 2 and feats.gaze_est[:, 1].abs().max() <= math.pi
