"""Making new labelled samples with a trained redirector: augmentation.py (a dataset, crash-safe and
multi-process), targets.py (the angles asked for), parts.py (crash-safe part files), images.py (image files in,
redirected image files out). Imports the leaves, model/ and data/; never training/, evaluation/ or the CLI."""
