"""Evaluation of redirection (DESIGN §4), by role:

    estimator_training.py  training and validation of the independent estimator (regaze/estimator.py)
    pairs.py          fixed seeded (source, target) pairs of held-out subjects
    baselines.py      CopySource and SyntheticOracle: reference models with the redirector's interface
    redirection.py    one pass over the pairs: redirect, read with the independent estimator, compare
    image_quality.py  exact synthetic targets, eye boxes, PSNR / SSIM / L1, optional LPIPS / FID
    identity.py       identity similarity and its references
    report.py         summaries, eval.json and eval.md
    downstream.py     estimator trained without / with redirected samples, error on held-out subjects

The top-level entry points are in regaze/evaluate.py.
"""
