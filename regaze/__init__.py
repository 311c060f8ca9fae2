"""regaze: gaze and head redirection (patent CN118116053A) for augmenting gaze-estimation datasets."""
__version__ = "0.1.0"
