"""Training the redirector (patent claims 5-8): loop.py (the loop, top to bottom, no argparse), pair_step.py
(claims 5-6 and the step's loss terms), losses.py (pure loss functions), batches.py (images and pairs),
run_dir.py (what a run writes). Imports the leaves, model/ and data/; never evaluation/, augment/ or the CLI."""
