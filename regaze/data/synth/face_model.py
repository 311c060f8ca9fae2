"""The 3-D face of one subject, in head coordinates, and where its eyes look: per-image set-up in float64.

Head coordinates (mm): origin at the face centre (DESIGN §2: midpoint between the centre of the four eye
corners and the centre of the two mouth corners), x to the image right of a frontal face, y down, z out of
the back of the head; the face looks to -z. The head is a union of analytic primitives (ellipsoids for
cranium, hair cap, jaw, chin, mouth, cheeks, nose, ears; a cylinder neck) and two 12.5-mm eyeballs;
brows, lids, lips and hair are painted on those surfaces in the renderer.

Everything here is per image (shape (n,) or (n, 3)); the renderer turns it into float32 columns.
"""
from __future__ import annotations

import numpy as np

from regaze.data.synth.camera import CAMERA_DISTANCE_MM, head_rotation
from regaze.data.synth.params import IDENTITY_PARAMS, SESSION_PARAMS, columns
from regaze.geometry import pitchyaw_to_vector

__all__ = ["EYEBALL_RADIUS_MM", "face_geometry", "build_scene", "build_scene_view", "landmarks_cam",
           "eye_axes_head"]

EYEBALL_RADIUS_MM = 12.5
_CRANIUM_Y_MM = -18.0  # cranium centre above the eye line
_IRIS_RADIUS_MM = 6.0


def _ellipsoid_front_z(*, centre, radii, x, y):
    """z of the front (-z) surface of an axis-aligned ellipsoid at (x, y); arrays broadcast."""
    q = 1.0 - ((x - centre[..., 0]) / radii[..., 0]) ** 2 - ((y - centre[..., 1]) / radii[..., 1]) ** 2
    return centre[..., 2] - radii[..., 2] * np.sqrt(np.clip(q, 0.0, None))


def face_geometry(identity: np.ndarray) -> dict[str, np.ndarray]:
    """(n, P_id) identity -> primitives and landmarks in head coordinates (origin = face centre).

    Keys: `<primitive>_c` (n, 3) centres and `<primitive>_r` (n, 3) radii of the ellipsoids cranium, hair
    (cap), jaw, chin, nose_tip, nose_bridge (rotated about x by nose_bridge_tilt (n,) rad), the mirrored
    pair ear (the right one; the left has x negated), and the y-cylinder neck; bumps (n, B, 5);
    nostril_c (right nostril); eye_r / eye_l (n, 3) eyeball centres; eye_corners (n, 4, 3) right outer,
    right inner, left inner, left outer; mouth_corners (n, 2, 3); mouth_c; nose_tip (n, 3) front-most
    point of the nose; plus the identity scalars and colours the painter needs.
    """
    p = columns(identity, IDENTITY_PARAMS)
    n = identity.shape[0]
    one, zero = np.ones(n), np.zeros(n)

    def v3(x, y, z):
        return np.stack([x * one, y * one, z * one], -1)

    g: dict[str, np.ndarray] = {}
    # Model frame: eye line at y = 0, cranium front z = 0 on the midline at the eye line. Fronts of the
    # lower-face parts are placed at typical profile depths (mm behind that point).
    a, b, c = p["head_width_mm"], p["head_height_mm"], p["head_depth_mm"]
    cz = c * np.sqrt(1.0 - (_CRANIUM_Y_MM / b) ** 2)
    g["cranium_c"], g["cranium_r"] = v3(0.0, _CRANIUM_Y_MM, cz), v3(a, b, c)
    hv = p["hair_volume_mm"]
    g["hair_c"], g["hair_r"] = g["cranium_c"] + v3(0.0, -0.2 * hv, 0.3 * hv), g["cranium_r"] + v3(hv, hv, hv)
    y_m = p["eye_mouth_mm"]
    jaw_rz = 0.95 * c
    g["jaw_c"] = v3(0.0, y_m - 18.0, 3.0 + jaw_rz)
    g["jaw_r"] = v3(p["jaw_width_mm"], p["chin_length_mm"] + 16.0, jaw_rz)
    chin_y = y_m + 0.5 * p["chin_length_mm"]
    z_chin = _ellipsoid_front_z(centre=g["jaw_c"], radii=g["jaw_r"], x=zero, y=chin_y) - 3.0
    g["chin_c"], g["chin_r"] = v3(0.0, chin_y, z_chin + 16.0), v3(20.0, 0.36 * p["chin_length_mm"], 16.0)
    # Relief painted into the normals of cranium and jaw: (centre x, centre y, radius x, radius y, height mm);
    # x is mirrored (|x|) so each bump with x > 0 has a twin.
    cw = p["cheek_width_mm"]
    ex = 0.5 * p["eye_spacing_mm"]
    g["bumps"] = np.stack([
        np.stack([0.6 * cw, 0.33 * y_m, 24.0 * one, 18.0 * one, 2.0 + 0.3 * (cw - 54.0)], -1),  # cheekbone
        np.stack([ex - 2.0, -p["brow_height_mm"] + 1.0, 21.0 * one, 8.0 * one, 2.5 * one], -1),  # brow ridge
        np.stack([ex, -2.0 * one, 16.0 * one, 11.0 * one, -3.0 * one], -1),  # eye socket
        np.stack([zero, y_m - 6.0, 0.75 * p["mouth_width_mm"], 26.0 * one, 4.0 * one], -1),  # teeth arch
        np.stack([zero, y_m - 2.6, 0.55 * p["mouth_width_mm"], 4.5 * one, 1.6 * one], -1),  # upper lip
        np.stack([zero, y_m + 3.8, 0.5 * p["mouth_width_mm"], 5.0 * one, 2.0 * one], -1),  # lower lip
        np.stack([zero, y_m + 14.0, 0.45 * p["mouth_width_mm"], 6.0 * one, -1.5 * one], -1),  # under the lip
        np.stack([ex + 17.0, -20.0 * one, 14.0 * one, 20.0 * one, -2.0 * one], -1),  # temple
    ], 1)  # (n, B, 5)
    g["neck_c"], g["neck_r"] = v3(0.0, 70.0, cz + 30.0), v3(0.5 * a, 60.0, 0.5 * c)  # cylinder along y
    g["ear_c"], g["ear_r"] = v3(a - 3.0, 14.0, cz + 6.0), v3(5.0, 29.0, 16.0)

    # Eyes: the cornea pokes 1 mm out of the cranium surface.
    ez = _ellipsoid_front_z(centre=g["cranium_c"], radii=g["cranium_r"], x=ex, y=zero) - 1.0 + EYEBALL_RADIUS_MM
    g["eye_r"], g["eye_l"] = v3(ex, 0.0, ez), v3(-ex, 0.0, ez)
    w, tilt = 0.5 * p["eye_width_mm"], p["eye_tilt"]
    z_corner = ez - 0.6 * EYEBALL_RADIUS_MM
    g["eye_corners"] = np.stack([v3(ex + w, -tilt * w, z_corner), v3(ex - w, tilt * w, z_corner),
                                 v3(-ex + w, tilt * w, z_corner), v3(-ex - w, -tilt * w, z_corner)], 1)

    # Nose: a broad tip (with the alae) and a bridge tilted from the root (between the eyes) to the tip.
    y_tip, nw = p["nose_length_mm"], p["nose_width_mm"]
    z_tip = 1.0 - p["nose_protrusion_mm"]  # the lower face front is at z ~ 1 under the nose
    g["nose_tip_r"] = v3(0.3 * nw, 7.5, 10.0)
    g["nose_tip_c"] = v3(0.0, y_tip - 1.0, z_tip + 10.0)
    g["nose_tip"] = v3(0.0, y_tip - 1.0, z_tip)  # front-most point of the tip ellipsoid
    g["nostril_c"] = v3(0.16 * nw, y_tip + 5.0, z_tip + 9.0)
    root, top = v3(0.0, 2.0, 2.0), v3(0.0, y_tip - 7.0, z_tip + 3.5)
    seg = top - root
    g["nose_bridge_c"] = 0.5 * (root + top) + v3(0.0, 0.0, 6.0)
    g["nose_bridge_tilt"] = np.arctan2(-seg[:, 2], seg[:, 1])  # long axis turned from +y toward -z
    g["nose_bridge_r"] = v3(0.19 * nw, 0.5 * np.linalg.norm(seg, axis=-1) + 5.0, 7.5)

    # Mouth corners on the jaw surface.
    mw = 0.5 * p["mouth_width_mm"]
    z_mc = _ellipsoid_front_z(centre=g["jaw_c"], radii=g["jaw_r"], x=mw, y=y_m)
    g["mouth_corners"] = np.stack([v3(mw, y_m, z_mc), v3(-mw, y_m, z_mc)], 1)
    g["mouth_c"] = v3(0.0, y_m, 0.0)

    # Shift everything so that the face centre is the origin.
    fc = 0.5 * (g["eye_corners"].mean(1) + g["mouth_corners"].mean(1))  # (n, 3)
    for k in list(g):
        if k.endswith("_c") or k in ("eye_r", "eye_l", "nose_tip"):
            g[k] = g[k] - fc
        elif k in ("eye_corners", "mouth_corners"):
            g[k] = g[k] - fc[:, None]
    g["bumps"][:, :, 1] -= fc[:, None, 1]  # the face centre has x = 0: mirrored x stays valid
    for k in ("eye_width_mm", "eye_tilt", "eye_opening", "brow_height_mm", "brow_thickness_mm",
              "brow_darkness", "mouth_width_mm", "lip_fullness_mm", "lip_redness", "hairline_mm",
              "hair_sides", "glasses", "glasses_dark", "nose_width_mm"):
        g[k] = p[k]
    for k in ("skin", "hair", "iris"):
        g[k] = np.stack([p[f"{k}_r"], p[f"{k}_g"], p[f"{k}_b"]], -1)
    return g


def eye_axes_head(geometry: dict, *, head_pitchyaw_rad, gaze_pitchyaw_rad, target_distance_mm):
    """Optical axes of both eyes verging on the gaze target, in head coordinates: ((n, 3) right, (n, 3) left).

    The target is target_distance_mm from the face centre along the gaze label g (camera coordinates), so
    g is exactly the unit vector from the face centre to the target.
    """
    rot = head_rotation(head_pitchyaw_rad)  # (n, 3, 3)
    g_cam = pitchyaw_to_vector(np.asarray(gaze_pitchyaw_rad, dtype=np.float64))  # (n, 3)
    return _verging_axes(geometry, rot=rot, gaze_cam=g_cam, target_distance_mm=target_distance_mm)


def _verging_axes(geometry: dict, *, rot, gaze_cam, target_distance_mm):
    """Eye axes toward the target at target_distance_mm along the unit camera-frame gaze (n, 3) from the face
    centre, for the head -> camera rotation rot (n, 3, 3)."""
    target_head = np.einsum("nji,nj->ni", rot, gaze_cam) * np.asarray(target_distance_mm)[:, None]  # M^T g d
    axes = []
    for key in ("eye_r", "eye_l"):
        v = target_head - geometry[key]
        axes.append(v / np.linalg.norm(v, axis=-1, keepdims=True))
    return axes[0], axes[1]


def landmarks_cam(identity, *, head_pitchyaw_rad) -> dict[str, np.ndarray]:
    """Landmarks in the normalized camera (mm): eye_r, eye_l (eyeball centres), eye_corners (n, 4, 3),
    mouth_corners (n, 2, 3), nose_tip, face_centre. Project them with camera.project."""
    identity = np.atleast_2d(np.asarray(identity, dtype=np.float64))
    geo = face_geometry(identity)
    rot = head_rotation(np.atleast_2d(head_pitchyaw_rad))  # (n, 3, 3)
    fc = np.array([0.0, 0.0, CAMERA_DISTANCE_MM])
    out = {}
    for k in ("eye_r", "eye_l", "nose_tip", "eye_corners", "mouth_corners"):
        pts = geo[k]
        out[k] = (np.einsum("nij,n...j->n...i", rot, pts)) + fc
    out["face_centre"] = np.broadcast_to(fc, (identity.shape[0], 3)).copy()
    return out


def pupil_centres_cam(identity, session, *, head_pitchyaw_rad, gaze_pitchyaw_rad) -> np.ndarray:
    """(n, 2, 3) camera-coordinate centres of the pupils (right, left): eyeball centre + radius * axis."""
    identity = np.atleast_2d(np.asarray(identity, dtype=np.float64))
    s = columns(np.atleast_2d(session), SESSION_PARAMS)
    geo = face_geometry(identity)
    head = np.atleast_2d(head_pitchyaw_rad)
    ax_r, ax_l = eye_axes_head(geo, head_pitchyaw_rad=head, gaze_pitchyaw_rad=np.atleast_2d(gaze_pitchyaw_rad),
                               target_distance_mm=s["target_distance_mm"])
    pts = np.stack([geo["eye_r"] + EYEBALL_RADIUS_MM * ax_r, geo["eye_l"] + EYEBALL_RADIUS_MM * ax_l], 1)
    rot = head_rotation(head)
    return np.einsum("nij,nkj->nki", rot, pts) + np.array([0.0, 0.0, CAMERA_DISTANCE_MM])


def build_scene(identity, session, *, head_pitchyaw_rad, gaze_pitchyaw_rad) -> dict[str, np.ndarray]:
    """Everything the pixel stage needs for n images, in head coordinates: geometry, eye axes, the ray
    origin (camera centre), the light direction, lid apertures that follow the eyes' pitch."""
    identity = np.asarray(identity, dtype=np.float64)
    s = columns(session, SESSION_PARAMS)
    geo = face_geometry(identity)
    head = np.asarray(head_pitchyaw_rad, dtype=np.float64)
    rot = head_rotation(head)  # (n, 3, 3) head -> camera
    ax_r, ax_l = eye_axes_head(geo, head_pitchyaw_rad=head, gaze_pitchyaw_rad=gaze_pitchyaw_rad,
                               target_distance_mm=s["target_distance_mm"])
    origin = -rot[:, 2, :] * CAMERA_DISTANCE_MM  # M^T (0 - fc_cam), (n, 3)
    return _assemble_scene(geo, s, rot=rot, origin=origin, axes=(ax_r, ax_l))


def build_scene_view(identity, session, *, head_rot_cam, face_centre_cam, gaze_cam,
                     light_rotation=None) -> dict[str, np.ndarray]:
    """build_scene for a head anywhere in a camera: head_rot_cam (n, 3, 3) head -> camera (roll allowed),
    face_centre_cam (n, 3) mm, gaze_cam (n, 3) unit vectors from the face centre toward the target."""
    s = columns(session, SESSION_PARAMS)
    geo = face_geometry(np.asarray(identity, dtype=np.float64))
    rot = np.asarray(head_rot_cam, dtype=np.float64)
    axes = _verging_axes(geo, rot=rot, gaze_cam=np.asarray(gaze_cam, dtype=np.float64),
                         target_distance_mm=s["target_distance_mm"])
    origin = -np.einsum("nji,nj->ni", rot, np.asarray(face_centre_cam, dtype=np.float64))  # M^T (0 - c), (n, 3)
    return _assemble_scene(geo, s, rot=rot, origin=origin, axes=axes, light_rotation=light_rotation)


def _assemble_scene(geo: dict, s: dict, *, rot, origin, axes, light_rotation=None) -> dict[str, np.ndarray]:
    """The scene dict from the geometry, the session columns, the pose (rot, ray origin in head coordinates)
    and the eye axes; the light is fixed in the camera, so it turns into the head frame with rot.
    light_rotation (n, 3, 3): the session's light direction is given in another camera, this rotation from it
    to the rendering camera (a normalized view of a photo keeps the photo's light: R)."""
    ax_r, ax_l = axes
    n = rot.shape[0]
    scene = dict(geo)
    scene["axis_r"], scene["axis_l"] = ax_r, ax_l
    scene["origin"] = origin
    scene["rot"] = rot
    az, el = s["light_azimuth_rad"], s["light_elevation_rad"]
    light_cam = np.stack([np.sin(az) * np.cos(el), -np.sin(el), -np.cos(az) * np.cos(el)], -1)  # to the light
    if light_rotation is not None:
        light_cam = np.einsum("nij,nj->ni", np.asarray(light_rotation, dtype=np.float64), light_cam)
    scene["light"] = np.einsum("nji,nj->ni", rot, light_cam)
    # Lids follow the eye's pitch relative to the head: up-gaze lifts the upper lid, down-gaze lowers it.
    for side, ax in (("r", ax_r), ("l", ax_l)):
        sin_pitch = -ax[:, 1]  # pitch = asin(-a_y) in head coordinates
        scene[f"lid_up_{side}"] = np.clip(geo["eye_opening"] * 5.6 + 0.85 * EYEBALL_RADIUS_MM * sin_pitch, 0.6, None)
        scene[f"lid_lo_{side}"] = np.clip(geo["eye_opening"] * 4.2 - 0.3 * EYEBALL_RADIUS_MM * sin_pitch, 0.6, None)
    scene.update({k: s[k] for k in SESSION_PARAMS})
    scene["iris_cos"] = np.full(n, np.sqrt(1.0 - (_IRIS_RADIUS_MM / EYEBALL_RADIUS_MM) ** 2))
    scene["pupil_cos"] = np.sqrt(1.0 - (s["pupil_radius_mm"] / EYEBALL_RADIUS_MM) ** 2)
    return scene
