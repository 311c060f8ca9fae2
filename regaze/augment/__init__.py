"""Making new labelled samples with a trained redirector: augmentation.py (a dataset, crash-safe and
multi-process), targets.py (the angles asked for, inside the data's range), chunks.py (the plan and one
chunk's work), parts.py (crash-safe part files), residuals.py (what an independent estimator reads in the
output), images.py (image files in, redirected image files out). Imports the leaves, model/ and data/; never
training/, evaluation/ or the CLI: the estimator comes in as a plain callable."""
