"""The one exception type for mistakes a user can make; the CLI prints it as one line."""


class EdgeAdaptError(Exception):
    """A user-facing error: the message names what is wrong and what to do about it."""
