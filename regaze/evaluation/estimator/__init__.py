"""The independent gaze / head estimator, for evaluation only: network.py (the network and its inputs),
trainer.py (training and validation on held-out subjects), store.py (checkpoints that refuse unvalidated
weights). Nothing in the redirector's training ever imports it."""
