"""The one exception type users see: its message is a single sentence naming the culprit."""


class FkdError(Exception):
    """Bad input (file, flag, weights, camera): the CLIs print the message and exit non-zero."""
