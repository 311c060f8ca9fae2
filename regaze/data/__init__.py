"""Datasets: readers for ETH-XGaze, ST-ED/FAZE and the regaze layout, the regaze writer, pair sampling,
and the synthetic face generator (`regaze.data.synth`)."""
