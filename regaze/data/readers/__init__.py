"""One reader per on-disk format (ethxgaze.py, sted.py, regaze_layout.py): each returns the blocks and labels
that regaze.data.dataset.GazeDataset is built from, and its framing (cameras.py: the normalized camera of each
format) in the attributes. Imports only regaze.data.h5_files, the writer's version constant and the leaves."""
