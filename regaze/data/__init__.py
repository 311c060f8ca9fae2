"""Datasets: dataset.py (GazeDataset and open_dataset, the one interface), readers/ (ETH-XGaze, ST-ED/FAZE, the
regaze layout), h5_files.py (HDF5 checks), writer.py, convert.py, pairs.py (pair sampling), synth/ (synthetic
faces with exact labels). Imports only the leaves (geometry, errors, image_io): never model/ or above."""
