"""Evaluation of redirection (DESIGN §4). Imports the leaves, model/ and data/; never training/, augment/ or
the CLI.

    protocol.py       the entry points: load a model, run every measurement, write eval.json / eval.md
    estimator/        the independent estimator: network, trainer, store (evaluation only)
    eval_pairs.py     fixed seeded (source, target) pairs of held-out subjects, in-range single-factor targets
    baselines.py      CopySource and SyntheticOracle: reference models with the redirector's interface
    redirection.py    one pass over the pairs: redirect, read with the independent estimator, compare
    readings.py       the angle rows: a reading vs labels, gaze in the camera frame and head-relative
    image_quality.py  exact synthetic targets, eye boxes, PSNR / SSIM / L1, optional LPIPS / FID
    blur_controls.py  the exact target blurred by sigma = 1 / 2 px: the reference rows of every image table
    identity.py       identity similarity, its controls' checks and summary
    identity_controls.py  the gallery reference, the stranger at the same pose, the mean face at the target pose
    report.py         summaries, eval.json
    eval_markdown.py  eval.md
    downstream.py     estimator trained without / with redirected samples, error on held-out subjects
"""
