"""The one exception type for bad user input (files, arguments, checkpoints).

The CLI prints its message without a traceback and exits non-zero; library callers can catch it.
"""


class RegazeError(ValueError):
    """Bad input at a boundary; the message says what was expected and what was found."""
