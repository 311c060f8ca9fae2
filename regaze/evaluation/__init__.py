"""Evaluation of redirection (DESIGN §4). Imports the leaves, model/ and data/; never training/, augment/ or
the CLI.

    protocol.py       the entry points: load a model, run every measurement, write eval.json / eval.md
    estimator/        the independent estimator: network, trainer, store (evaluation only)
    eval_pairs.py     fixed seeded (source, target) pairs of held-out subjects
    baselines.py      CopySource and SyntheticOracle: reference models with the redirector's interface
    redirection.py    one pass over the pairs: redirect, read with the independent estimator, compare
    image_quality.py  exact synthetic targets, eye boxes, PSNR / SSIM / L1, optional LPIPS / FID
    identity.py       identity similarity and its references
    report.py         summaries, eval.json and eval.md
    downstream.py     estimator trained without / with redirected samples, error on held-out subjects
"""
