"""render(): parameters -> uint8 images of synthetic faces, ray-cast per pixel, batched over images.

For each pixel a ray from the normalized camera is taken into head coordinates and intersected with the
head's analytic primitives (face_model.py, surfaces.py); the nearest hit is painted (paint.py) and lit
(Lambert with wrap, ambient, Phong highlights on skin and eyes); the eyeballs show through the lid
aperture; glasses sit on a plane in front of the eyes; the head is composited over the background with
analytic edge coverage, then blurred, noised and quantised (film.py).

render() is the normalized camera of camera.py (face centre on the axis at CAMERA_DISTANCE_MM, square images);
render_view() is any pinhole camera with the head anywhere in it, roll included. Both share the pixel stage
(_shade); everything measured in pixels per mm (edge softness, blur) uses the scale at the face centre,
f / |face centre|, so a face looks the same up to scale at any distance and focal length.
"""
from __future__ import annotations

import numpy as np
import torch

from regaze.data.synth import film, paint
from regaze.data.synth.camera import CAMERA_DISTANCE_MM, camera_rays, face_px_per_mm, focal_px, pixel_rays
from regaze.data.synth.face_model import EYEBALL_RADIUS_MM, build_scene, build_scene_view
from regaze.data.synth.params import IDENTITY_PARAMS, SESSION_PARAMS, columns
from regaze.data.synth.surfaces import (
    MISS, cylinder_y, dot, ellipsoid, normalize, point_on_ray, relief_gradient, rotate_x, sphere,
)

__all__ = ["render", "render_view", "SIZES"]

SIZES = (64, 128, 224)
_CHUNK = 16  # images per pixel-stage pass: keeps the (n, HW) temporaries in cache
_TILE_PX = 1 << 18  # render_view: pixels per pixel-stage pass of one image (memory stays ~ that of a chunk)
_PPM_128 = focal_px(128) / CAMERA_DISTANCE_MM  # px per mm of the 128-px normalized camera: film's unit of blur
_MIN_DISTANCE_MM = 250.0  # the head is ~25 cm deep: a camera closer than this can sit inside it
_BLEND_MM = 10.0  # normals of the face group blend over this depth difference (mm)
_FACE_GROUP = ("cranium", "jaw", "chin", "nose_bridge", "nose_tip")
_RELIEF = ("cranium", "jaw", "chin")  # surfaces that carry the painted relief (face_model bumps)
_OTHERS = ("hair", "ear", "neck")
_SKIN_SPEC_POWER_LOG2 = 4  # skin highlight ~ cos^16
_EYE_SPEC_POWER_LOG2 = 6  # eye highlight ~ cos^64


def render(*, identity, session, head, gaze, size: int = 128, layers: bool = False):
    """Render faces. identity (n, P_id) or (P_id,); session (n, P_s) or (P_s,); head, gaze (n, 2) or (2,)
    (pitch, yaw) in radians in the normalized camera -> uint8 (n, size, size, 3) RGB, or (size, size, 3)
    when given single vectors. With layers=True returns a dict with `image` and float32 debug layers
    (n, size, size): `pupil_r`, `pupil_l` (pupil coverage ignoring the lids), `nose_z` (head-coordinate
    z of the visible nose-tip surface, +inf elsewhere).
    """
    single = np.ndim(identity) == 1
    arrays = [np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (identity, session, head, gaze)]
    n = arrays[0].shape[0]
    expected = (len(IDENTITY_PARAMS), len(SESSION_PARAMS), 2, 2)
    for name, a, cols in zip(("identity", "session", "head", "gaze"), arrays, expected):
        if a.ndim != 2 or a.shape != (n, cols):
            raise ValueError(f"render: expected {name} of shape ({n}, {cols}) or ({cols},), got {a.shape}")
    if size not in SIZES:
        raise ValueError(f"render: size must be one of {SIZES}, got {size}")
    outs = [_render_chunk(*[a[i:i + _CHUNK] for a in arrays], size=size, layers=layers)
            for i in range(0, n, _CHUNK)]
    result = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    if single:
        result = {k: v[0] for k, v in result.items()}
    return result if layers else result["image"]


def render_view(*, identity, session, head_rot_cam, face_centre_cam, gaze_cam, camera_matrix, width: int,
                height: int, layers: bool = False, light_rotation=None):
    """Render faces seen by any pinhole camera. identity (n, P_id); session (n, P_s); head_rot_cam (n, 3, 3)
    head -> camera rotations (columns: the head's x, y, z axes in the camera, as camera.head_rotation; roll
    allowed); face_centre_cam (n, 3) mm, in front of the camera; gaze_cam (n, 3) unit vectors from the face
    centre toward the target (the eyes verge on it at the session's target_distance_mm); camera_matrix (3, 3)
    K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with camera.py's pixel centres (j + 0.5, i + 0.5), or (n, 3, 3),
    one per image (normalized views of faces at different distances have different focal lengths).
    -> uint8 (n, height, width, 3) RGB, or with layers=True a dict with `image` and float32 (n, height, width)
    layers: `face_mask` (coverage of face, hair, ears and neck; 0 on the background), `head_mask` (the same
    without the neck), and render()'s `pupil_r`, `pupil_l`, `nose_z`.

    The light is fixed in the camera as in render(), or in the camera that light_rotation (n, 3, 3) turns into
    this one (normalized_view passes R); the background fills the image whatever its shape.
    For the normalized camera (camera.normalized_camera_matrix(size), face centre (0, 0, CAMERA_DISTANCE_MM),
    head_rotation(head), pitchyaw_to_vector(gaze)) it gives render()'s bytes. Images render one at a time.
    Float32 ray casting keeps faces exact to ~2 m; farther, edges start to shimmer.
    """
    ids, ses, rot, fc, gaze, k = _checked_view_args(identity=identity, session=session, head_rot_cam=head_rot_cam,
                                                    face_centre_cam=face_centre_cam, gaze_cam=gaze_cam,
                                                    camera_matrix=camera_matrix, width=width, height=height)
    n, width, height = ids.shape[0], int(width), int(height)
    k = np.broadcast_to(k, (n, 3, 3))
    outs, rays = [], None
    for i in range(n):
        if rays is None or not np.array_equal(k[i], k[i - 1]):
            rays = camera_rays(k[i], width=width, height=height)  # (3, HW)
        ppm = float(face_px_per_mm(camera_matrix=k[i], face_centre_cam=fc[i]))
        light = None if light_rotation is None else np.asarray(light_rotation, np.float64).reshape(-1, 3, 3)[i:i + 1]
        outs.append(_render_view_one(ids[i:i + 1], ses[i:i + 1], rot[i:i + 1], fc[i:i + 1], gaze[i:i + 1], rays=rays,
                                     px_per_mm=ppm, width=width, height=height, layers=layers, light_rotation=light))
    result = {key: np.concatenate([o[key] for o in outs]) for key in outs[0]}
    return result if layers else result["image"]


def _checked_view_args(*, identity, session, head_rot_cam, face_centre_cam, gaze_cam, camera_matrix, width, height):
    """render_view's arguments as float64 arrays, or a ValueError that says what was expected."""
    k = np.asarray(camera_matrix, dtype=np.float64)
    if k.ndim not in (2, 3) or k.shape[-2:] != (3, 3) or np.any(k[..., 0, 0] <= 0) or np.any(k[..., 1, 1] <= 0) or \
            np.any(k[..., 0, 1] != 0) or np.any(k[..., 1, 0] != 0) or np.any(k[..., 2, :] != (0.0, 0.0, 1.0)):
        raise ValueError("render_view: expected camera_matrix (3, 3) or (n, 3, 3) [[fx, 0, cx], [0, fy, cy], "
                         f"[0, 0, 1]] with fx, fy > 0, got {k.tolist() if k.size == 9 else k.shape}")
    if int(width) != width or int(height) != height or width < 1 or height < 1:
        raise ValueError(f"render_view: width and height must be positive integers, got {width} x {height}")
    ids, ses, rot, fc, gaze = (np.asarray(a, dtype=np.float64)
                               for a in (identity, session, head_rot_cam, face_centre_cam, gaze_cam))
    n = ids.shape[0] if ids.ndim == 2 else 0
    for name, a, shape in (("identity", ids, (n, len(IDENTITY_PARAMS))), ("session", ses, (n, len(SESSION_PARAMS))),
                           ("head_rot_cam", rot, (n, 3, 3)), ("face_centre_cam", fc, (n, 3)),
                           ("gaze_cam", gaze, (n, 3)), ("camera_matrix", k, (n, 3, 3) if k.ndim == 3 else (3, 3))):
        if n == 0 or a.shape != shape:
            raise ValueError(f"render_view: expected {name} of shape {shape} (n = {n} images, n >= 1), got {a.shape}")
    if not np.allclose(np.einsum("nji,njk->nik", rot, rot), np.eye(3), atol=1e-5) or np.any(np.linalg.det(rot) < 0):
        raise ValueError("render_view: head_rot_cam must hold rotation matrices (orthonormal, determinant +1)")
    if np.any(fc[:, 2] < _MIN_DISTANCE_MM):
        raise ValueError(f"render_view: face_centre_cam must lie at z >= {_MIN_DISTANCE_MM} mm in front of the "
                         f"camera, got z = {fc[:, 2].min():.1f} mm")
    if np.any(np.abs(np.linalg.norm(gaze, axis=1) - 1.0) > 1e-5):
        raise ValueError("render_view: gaze_cam must hold unit vectors")
    return ids, ses, rot, fc, gaze, k


def _render_view_one(identity, session, rot, fc, gaze, *, rays, px_per_mm: float, width: int, height: int,
                     layers: bool, light_rotation=None) -> dict[str, np.ndarray]:
    """One image of render_view, in tiles of rows of at most _TILE_PX pixels."""
    scene = build_scene_view(identity, session, head_rot_cam=rot, face_centre_cam=fc, gaze_cam=gaze,
                             light_rotation=light_rotation)
    dist_mm = float(np.linalg.norm(fc[0]))
    P = _columns_to_torch(scene, px_per_mm=px_per_mm)  # edge widths and blur follow the scale at the face centre
    s_cols = columns(session, SESSION_PARAMS)
    bg = film.background_rect(s_cols, height=height, width=width)  # (1, 3, HW)
    step = max(1, _TILE_PX // width) * width
    tiles = [_shade(P, rays[:, a:a + step], background=bg[:, :, a:a + step], px_per_mm=px_per_mm,
                    eye_t_max_mm=2.0 * dist_mm, any_glasses=bool(scene["glasses"][0] > 0.5), layers=layers)
             for a in range(0, width * height, step)]
    img = torch.cat([t[0] for t in tiles], 2).view(1, 3, height, width)
    scale = px_per_mm / _PPM_128  # face scale relative to the 128-px normalized camera
    img = film.blur(img, sigma_px=s_cols["blur_px128"] * scale, radius_px=max(1, round(1.6 * scale)))
    img = film.add_noise(img, noise_std=s_cols["noise_std"], noise_seed=s_cols["noise_seed"])
    out = {"image": film.to_uint8(img)}
    for key in tiles[0][1]:
        out[key] = torch.cat([t[1][key] for t in tiles], 1).view(1, height, width).numpy()
    return out


def _columns_to_torch(scene: dict, *, px_per_mm: float) -> dict[str, torch.Tensor]:
    """Per-image scene values -> float32 (n, 1) columns named as in the pixel stage."""
    n = scene["skin"].shape[0]
    P: dict[str, np.ndarray] = {}
    for key in ("cranium", "jaw", "chin", "hair", "nose_tip", "nose_bridge", "neck", "ear"):
        for i, ax in enumerate("xyz"):
            P[f"{key}_c{ax}"] = scene[f"{key}_c"][:, i]
            P[f"{key}_ir{ax}"] = 1.0 / scene[f"{key}_r"][:, i]
    for key in ("origin", "light", "axis_r", "axis_l", "skin", "hair", "iris"):
        for i, ax in enumerate(("x", "y", "z") if key in ("origin", "light", "axis_r", "axis_l") else "rgb"):
            P[f"{key}_{ax}"] = scene[key][:, i]
    rot = scene["rot"]
    for i in range(3):
        for j in range(3):
            P[f"m{i}{j}"] = rot[:, i, j]
    for i, ax in enumerate("xyz"):
        P[f"nostril_c{ax}"] = scene["nostril_c"][:, i]
    tilt = scene["nose_bridge_tilt"]
    P["bridge_cos"], P["bridge_sin"] = np.cos(tilt), np.sin(tilt)
    P["eye_x"], P["eye_y"], P["eye_z"] = scene["eye_r"][:, 0], scene["eye_r"][:, 1], scene["eye_r"][:, 2]
    P["inv_eye_w"] = 2.0 / scene["eye_width_mm"]
    P["inv_socket_w"] = 1.0 / (0.5 * scene["eye_width_mm"] + 7.0)
    P["inv_hair_a"] = 1.0 / scene["hair_r"][:, 0]
    cos_temple = np.cos(np.deg2rad(58.0 - 26.0 * scene["hair_sides"]))  # hair beyond this angle from the front
    P["hair_temple_z"] = scene["cranium_c"][:, 2] - scene["cranium_r"][:, 2] * cos_temple
    P["hair_side_z"] = scene["cranium_c"][:, 2] - scene["cranium_r"][:, 2] * 0.45
    P["hair_side_y"] = -12.0 + 34.0 * scene["hair_sides"]
    P["cranium_z"] = scene["cranium_c"][:, 2]
    P["mouth_y"] = scene["mouth_c"][:, 1]
    P["inv_mouth_hw"] = 2.0 / scene["mouth_width_mm"]
    for k in ("eye_tilt", "brow_height_mm", "brow_thickness_mm", "brow_darkness", "lip_fullness_mm",
              "hairline_mm", "glasses", "glasses_dark", "lid_up_r", "lid_up_l", "lid_lo_r", "lid_lo_l",
              "iris_cos", "pupil_cos", "ambient", "specular", "light_intensity", "light_r", "light_g", "light_b"):
        P[k] = scene[k]
    ppm = px_per_mm
    P["inv_iris_span"] = 1.0 / (1.0 - scene["iris_cos"])
    P["iris_px_per_cos"] = EYEBALL_RADIUS_MM * ppm / np.sqrt(1.0 - scene["iris_cos"] ** 2)
    P["pupil_px_per_cos"] = EYEBALL_RADIUS_MM * ppm / np.sqrt(1.0 - scene["pupil_cos"] ** 2)
    skin_luma = scene["skin"] @ np.array([0.3, 0.59, 0.11])  # (n,)
    # Sclera in shade reads far from white in photographs, more so next to dark skin.
    sclera = np.array([0.74, 0.70, 0.67]) + 0.2 * skin_luma[:, None]
    P["skin_gloss"] = 0.35 * np.ones_like(skin_luma)
    P["sclera_r"], P["sclera_g"], P["sclera_b"] = sclera[:, 0], sclera[:, 1], sclera[:, 2]
    redness = scene["lip_redness"][:, None]
    lip = scene["skin"] * (np.array([0.86, 0.62, 0.62]) + redness * np.array([0.08, -0.08, -0.04]))
    P["lip_r"], P["lip_g"], P["lip_b"] = lip[:, 0], lip[:, 1], lip[:, 2]
    brow = scene["hair"] * 0.35 + np.array([0.04, 0.03, 0.02])  # brows read darker than the hair
    P["brow_r"], P["brow_g"], P["brow_b"] = brow[:, 0], brow[:, 1], brow[:, 2]
    out = {k: torch.from_numpy(np.asarray(v, dtype=np.float32).reshape(n, 1)) for k, v in P.items()}
    bumps = torch.from_numpy(scene["bumps"].astype(np.float32))  # (n, B, 5)
    out["bumps"] = [(b[:, 0:1], b[:, 1:2], 1.0 / b[:, 2:3], 1.0 / b[:, 3:4], b[:, 4:5]) for b in bumps.unbind(1)]
    return out


def _render_chunk(identity, session, head, gaze, *, size: int, layers: bool) -> dict[str, np.ndarray]:
    scene = build_scene(identity, session, head_pitchyaw_rad=head, gaze_pitchyaw_rad=gaze)
    ppm = focal_px(size) / CAMERA_DISTANCE_MM  # pixels per mm at the face centre
    P = _columns_to_torch(scene, px_per_mm=ppm)
    n = identity.shape[0]
    s_cols = columns(session, SESSION_PARAMS)
    bg = film.background(s_cols, size=size)  # (n, 3, HW)
    colour, extra = _shade(P, pixel_rays(size), background=bg, px_per_mm=ppm, eye_t_max_mm=CAMERA_DISTANCE_MM * 2,
                           any_glasses=bool(np.any(scene["glasses"] > 0.5)), layers=layers)
    img = colour.view(n, 3, size, size)
    img = film.blur(img, sigma_px=s_cols["blur_px128"] * size / 128.0, radius_px=max(1, round(1.6 * size / 128.0)))
    img = film.add_noise(img, noise_std=s_cols["noise_std"], noise_seed=s_cols["noise_seed"])
    out = {"image": film.to_uint8(img)}
    if layers:
        for k in ("pupil_r", "pupil_l", "nose_z"):
            out[k] = extra[k].view(n, size, size).numpy()
    return out


def _shade(P, rays, *, background, px_per_mm, eye_t_max_mm, any_glasses: bool, layers: bool):
    """The pixel stage: rays (3, HW) in the camera, background (n, 3, HW) -> colour (n, 3, HW) composited
    over the background, before the film, and (with layers) float32 (n, HW) layers: face_mask (head
    coverage), head_mask (the same without the neck), pupil_r, pupil_l, nose_z. Every pixel is computed
    alone, so any split of the pixels or the images gives the same values."""
    n, hw = background.shape[0], rays.shape[1]
    ppm = px_per_mm
    # Rays in head coordinates: d_head = M^T d_cam, origin = M^T (0 - face centre).
    d = tuple(P[f"m0{i}"] * rays[0] + P[f"m1{i}"] * rays[1] + P[f"m2{i}"] * rays[2] for i in range(3))  # (n, HW)
    o = (P["origin_x"], P["origin_y"], P["origin_z"])  # (n, 1)

    def prim(key):
        return (P[f"{key}_cx"], P[f"{key}_cy"], P[f"{key}_cz"]), (P[f"{key}_irx"], P[f"{key}_iry"], P[f"{key}_irz"])

    # --- Surfaces. The face group is a smooth union (normals blended by depth); hair cap, ears, neck not.
    cands = {}
    for key in ("cranium", "jaw", "chin", "nose_tip", "hair"):
        c, ir = prim(key)
        cands[key] = ellipsoid(o, d, centre=c, inv_radii=ir)
    for key in ("ear",):  # mirrored pairs: intersect the one on the ray's side
        c, ir = prim(key)
        x_at = o[0] + d[0] * ((c[2] - o[2]) / d[2])
        cands[key] = ellipsoid(o, d, centre=(torch.where(x_at > 0.0, c[0], -c[0]), c[1], c[2]), inv_radii=ir)
    c, ir = prim("nose_bridge")
    cb, sb = P["bridge_cos"], P["bridge_sin"]
    o_b = rotate_x((o[0] - c[0], o[1] - c[1], o[2] - c[2]), cb, sb)  # into the bridge's frame
    t_b, cov_b, n_b = ellipsoid(o_b, rotate_x(d, cb, sb), centre=(0.0, 0.0, 0.0), inv_radii=ir)
    cands["nose_bridge"] = (t_b, cov_b, rotate_x(n_b, cb, -sb))
    c, ir = prim("neck")
    cands["neck"] = cylinder_y(o, d, centre=c, inv_radii=ir)

    valid = {
        "hair": paint.hair_region(point_on_ray(o, d, cands["hair"][0]), P=P, px_per_mm=ppm) > 0.5,
        "neck": point_on_ray(o, d, cands["neck"][0])[1] > P["neck_cy"],
    }
    # Depth keys: hits by depth first, then misses by how closely they miss (for edge pixels).
    keys = {}
    for k, (t, cov, _) in cands.items():
        key_k = torch.where(cov > 0.0, t, MISS * (1.0 - cov))
        keys[k] = torch.where(valid[k], key_k, 4.0 * MISS) if k in valid else key_k
    t_nose = torch.minimum(keys["nose_tip"], keys["nose_bridge"])
    face_t = None
    for k in _FACE_GROUP:
        face_t = keys[k] if face_t is None else torch.minimum(face_t, keys[k])
    best = face_t
    for k in _OTHERS:
        best = torch.minimum(best, keys[k])
    t_raw = torch.zeros_like(best)
    for k, (t_k, _, _) in cands.items():
        t_raw = torch.where(keys[k] == best, t_k, t_raw)
    p = point_on_ray(o, d, t_raw)  # (n, HW) x3, head coordinates of the visible point
    gx, gy = relief_gradient(p[0], p[1], bumps=P["bumps"])
    nf = (0.0, 0.0, 0.0)
    for k in _FACE_GROUP:
        w = (1.0 - (keys[k] - face_t) * (1.0 / _BLEND_MM)).clamp_min(0.0)
        nk = normalize(cands[k][2])
        if k in _RELIEF:
            nk = (nk[0] + nk[2] * gx, nk[1] + nk[2] * gy, nk[2])
        nf = tuple(nf[i] + (w * w) * nk[i] for i in range(3))
    normal = nf
    part = {k: keys[k] <= best for k in _OTHERS + ("nose_tip",)}  # which primitive is the visible one
    for k in _OTHERS:
        nk = normalize(cands[k][2])
        normal = tuple(torch.where(part[k], nk[i], normal[i]) for i in range(3))
    is_face = face_t <= best
    normal = normalize(normal)

    # Coverage of the head against the background (analytic, about one pixel wide).
    alpha = torch.zeros_like(best)
    for k, radius_mm in (("cranium", 80.0), ("jaw", 60.0), ("chin", 20.0), ("hair", 85.0), ("ear", 15.0),
                         ("neck", 60.0)):
        a_k = (cands[k][1] * (0.5 * radius_mm * ppm) + 0.5).clamp(0.0, 1.0)
        if k == "neck":
            head_alpha = alpha
        alpha = torch.maximum(alpha, a_k if k not in valid else torch.where(valid[k], a_k, 0.0))
    t_best = torch.where(best < MISS, best, MISS)

    # --- Paint the skin. ---
    skin = (P["skin_r"], P["skin_g"], P["skin_b"])
    albedo = tuple(s.expand(n, hw) for s in skin)
    lip_a, mouth_a = paint.lips(p, P=P, px_per_mm=ppm)
    albedo = paint.lerp3(albedo, (P["lip_r"], P["lip_g"], P["lip_b"]), lip_a)
    right = p[0] > 0.0
    x_l = p[0].abs() - P["eye_x"]
    y_l = p[1] - P["eye_y"]
    lid_up = torch.where(right, P["lid_up_r"], P["lid_up_l"])
    lid_lo = torch.where(right, P["lid_lo_r"], P["lid_lo_l"])
    d_up, d_lo, t_lid = paint.eye_aperture(x_l, y_l, lid_up=lid_up, lid_lo=lid_lo, P=P)
    darken, lash, aperture = paint.eye_surroundings(d_up, d_lo, t_lid, x_l, y_l, lid_up=lid_up, P=P, px_per_mm=ppm)
    brow_a = paint.brows(x_l, y_l, P=P, px_per_mm=ppm) * P["brow_darkness"]
    albedo = paint.lerp3(albedo, (P["brow_r"], P["brow_g"], P["brow_b"]), brow_a)
    hair_a = torch.where(is_face, paint.hair_region(p, P=P, px_per_mm=ppm, grow_mm=2.5), 0.0)
    hair_a = torch.where(part["hair"], 1.0, hair_a)
    strands = 0.6 + 0.3 * (torch.frac(p[0] * 0.37 + p[1] * 0.05 + p[2] * 0.11) - 0.5).abs()
    hair_col = (P["hair_r"] * strands, P["hair_g"] * strands, P["hair_b"] * strands)
    albedo = paint.lerp3(albedo, hair_col, hair_a)
    lash = lash * (1.0 - hair_a)
    albedo = paint.lerp3(albedo, (0.05, 0.04, 0.035), torch.maximum(lash, mouth_a * 0.85))
    albedo = paint.lerp3(albedo, (0.35 * P["skin_r"], 0.16 * P["skin_g"], 0.16 * P["skin_b"]), aperture)
    nx, ny, nz = (p[0].abs() - P["nostril_cx"]) * (1 / 3.2), (p[1] - P["nostril_cy"]) * (1 / 2.5), (p[2] - P["nostril_cz"]) * (1 / 4.5)
    nostril = (1.6 - 1.6 * (nx * nx + ny * ny + nz * nz)).clamp(0.0, 1.0)
    darken = darken * (1.0 - 0.8 * nostril)
    darken = darken * torch.where(part["neck"], 0.55, 1.0)  # in the jaw's shadow
    albedo = tuple(a * darken for a in albedo)

    # --- Light the skin. ---
    L = (P["light_x"], P["light_y"], P["light_z"])
    V = (-d[0], -d[1], -d[2])
    light = (P["light_r"], P["light_g"], P["light_b"])
    n_dot_l = dot(normal, L)
    diffuse = ((n_dot_l + 0.45) * (1.0 / 1.45)).clamp_min(0.0) * P["light_intensity"] + P["ambient"]
    r_dot_v = (2.0 * n_dot_l * dot(normal, V) - dot(L, V)).clamp_min(0.0)
    spec = _power_of_two(r_dot_v, _SKIN_SPEC_POWER_LOG2) * (P["specular"] * P["skin_gloss"] * (1.0 - hair_a * 0.6))
    colour = tuple(albedo[i] * diffuse * light[i] + spec * light[i] for i in range(3))

    # --- Eyeballs through the aperture. ---
    x_at_eye = o[0] + d[0] * ((P["eye_z"] - o[2]) / d[2])
    right_eye = x_at_eye > 0.0
    eye_c = (torch.where(right_eye, P["eye_x"], -P["eye_x"]), P["eye_y"], P["eye_z"])
    t_eye, n_eye = sphere(o, d, centre=eye_c, radius=EYEBALL_RADIUS_MM)
    axis = tuple(torch.where(right_eye, P[f"axis_r_{a}"], P[f"axis_l_{a}"]) for a in "xyz")
    cos_axis = dot(n_eye, axis)
    q = point_on_ray(o, d, t_eye.clamp_max(eye_t_max_mm))
    lid_up_e = torch.where(right_eye, P["lid_up_r"], P["lid_up_l"])
    lid_lo_e = torch.where(right_eye, P["lid_lo_r"], P["lid_lo_l"])
    e_up, e_lo, _ = paint.eye_aperture(q[0].abs() - P["eye_x"], q[1] - P["eye_y"], lid_up=lid_up_e, lid_lo=lid_lo_e, P=P)
    in_front = (t_eye < MISS) & (t_eye < t_nose + 1.0) & ~part["hair"]
    eye_a = torch.where(in_front, paint.soft(torch.minimum(e_up, e_lo), ppm), 0.0)
    eye_alb = paint.eyeball_albedo(cos_axis, P=P, px_per_mm=ppm)
    lid_shadow = 1.0 - 0.45 * (1.0 - e_up * (1.0 / 3.0)).clamp(0.0, 1.0)
    ne_dot_l = dot(n_eye, L)
    eye_diffuse = (ne_dot_l * 0.35 + 0.65).clamp_min(0.0) * P["light_intensity"] + P["ambient"]
    re_dot_v = (2.0 * ne_dot_l * dot(n_eye, V) - dot(L, V)).clamp_min(0.0)
    eye_spec = _power_of_two(re_dot_v, _EYE_SPEC_POWER_LOG2) * (P["specular"] * 2.2) * lid_shadow
    eye_col = tuple(eye_alb[i] * eye_diffuse * lid_shadow * light[i] + eye_spec * light[i] for i in range(3))
    colour = paint.lerp3(colour, eye_col, eye_a)

    # --- Background, glasses. ---
    bg = background
    colour = tuple(bg[:, i] + alpha * (colour[i] - bg[:, i]) for i in range(3))
    if any_glasses:
        colour = _glasses(colour, o, d, P=P, t_skin=t_best, px_per_mm=ppm)
    extra = {}
    if layers:
        pupil = paint.soft((cos_axis - P["pupil_cos"]) * P["pupil_px_per_cos"], 1.0) * (t_eye < MISS)
        nose_z = torch.where(part["nose_tip"] & (best < MISS), p[2], float("inf"))
        extra = {"face_mask": alpha, "head_mask": head_alpha, "pupil_r": pupil * right_eye,
                 "pupil_l": pupil * ~right_eye, "nose_z": nose_z}
    return torch.stack(colour, 1), extra


def _power_of_two(x: torch.Tensor, log2_power: int) -> torch.Tensor:
    for _ in range(log2_power):
        x = x * x
    return x


def _glasses(colour, o, d, *, P, t_skin, px_per_mm):
    """Frames (two rounded rims and a bridge) and a faint lens tint on a plane 12 mm in front of the corneas."""
    z_plane = P["eye_z"] - EYEBALL_RADIUS_MM - 12.0
    t = (z_plane - o[2]) / d[2]
    gx, gy = o[0] + t * d[0], o[1] + t * d[1]
    x_l = gx.abs() - P["eye_x"]
    y_l = gy - P["eye_y"] - 1.0
    ex, ey = x_l * (1.0 / 24.0), y_l * (1.0 / 17.0)
    e2 = ex * ex + ey * ey
    e4 = e2 * e2  # squarish rims: (x^4 + y^4)-like norm
    rim_r = torch.sqrt(torch.sqrt(e4 - 2.0 * ex * ex * ey * ey * 0.6))
    rim = paint.soft(0.8 - (rim_r - 1.0).abs() * 17.0, px_per_mm)
    bridge = paint.soft(1.1 - (y_l + 2.0).abs(), px_per_mm) * paint.soft(P["eye_x"] - 20.0 - gx.abs(), px_per_mm)
    frame = torch.maximum(rim, bridge) * (t < t_skin) * P["glasses"]
    lens = paint.soft(1.0 - rim_r, px_per_mm * 17.0) * (t < t_skin) * P["glasses"]
    dark = P["glasses_dark"]
    frame_col = (0.55 - 0.5 * dark, 0.52 - 0.47 * dark, 0.5 - 0.45 * dark)
    tint = 1.0 - 0.08 * lens
    colour = tuple(c * tint + 0.06 * lens * (1.0 - ey.clamp(-1.0, 1.0)) * 0.5 for c in colour)
    return paint.lerp3(colour, frame_col, frame)
