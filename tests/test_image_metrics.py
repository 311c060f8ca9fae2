"""PSNR / SSIM / L1 agree with their definitions and with an independent implementation."""
import numpy as np
import pytest
import torch

from regaze.image_metrics import crop_box, l1, psnr_db, ssim


def _imgs(seed=0, n=3, s=32):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8)


def test_identical_images():
    a = _imgs()
    assert np.all(psnr_db(a, a) >= 99.9)
    np.testing.assert_allclose(ssim(a, a), 1.0, atol=1e-9)
    np.testing.assert_allclose(l1(a, a), 0.0)


def test_psnr_and_l1_values():
    a = np.zeros((1, 8, 8, 3), np.uint8)
    b = np.full((1, 8, 8, 3), 51, np.uint8)  # 0.2 everywhere
    assert psnr_db(a, b)[0] == pytest.approx(-10 * np.log10(0.04))
    assert l1(a, b)[0] == pytest.approx(0.2)
    t = torch.from_numpy(b).permute(0, 3, 1, 2).float() / 127.5 - 1  # tensors in [-1, 1] read the same
    assert psnr_db(a, t)[0] == pytest.approx(psnr_db(a, b)[0], abs=1e-4)


def test_ssim_ranks_similarity():
    """Unrelated noise scores near zero; the same image with mild noise scores far higher."""
    a, b = _imgs(1, n=1, s=16), _imgs(2, n=1, s=16)
    ours = ssim(a, b)[0]
    assert -1.0 <= ours <= 1.0 and ours < 0.2  # unrelated noise images: near zero
    noisy = np.clip(a.astype(int) + np.random.default_rng(3).integers(-10, 11, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, noisy)[0] > ssim(a, b)[0] + 0.5


def test_crop_box_per_image():
    a = _imgs(n=2, s=16)
    boxes = np.array([[0, 0, 4, 6], [5, 5, 4, 6]])
    c = crop_box(a, boxes)
    assert c.shape == (2, 4, 6, 3)
    np.testing.assert_array_equal(c[1], a[1, 5:9, 5:11])


def _ssim_2d_reference(a, b, *, window=7, sigma=1.5):
    """SSIM with the 2-D window written out (the definition), to check the separable implementation."""
    import torch.nn.functional as F

    x = torch.from_numpy(a).permute(0, 3, 1, 2).double() / 255.0
    y = torch.from_numpy(b).permute(0, 3, 1, 2).double() / 255.0
    coords = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).expand(3, 1, window, window).contiguous()
    blur = lambda t: F.conv2d(t, k, groups=3)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).numpy()


@pytest.mark.parametrize("size", [8, 16, 64])
def test_separable_ssim_equals_the_2d_window(size):
    a, b = _imgs(4, n=2, s=size), _imgs(5, n=2, s=size)
    smooth = np.clip(a.astype(int) // 2 + b.astype(int) // 2, 0, 255).astype(np.uint8)
    for other in (b, smooth):
        np.testing.assert_allclose(ssim(a, other), _ssim_2d_reference(a, other), atol=1e-12)
