"""The one exception type for user mistakes: the CLI prints it as one line and exits non-zero."""


class MaagError(ValueError):
    """A problem with what the user asked for or handed us (a name, a file, an argument)."""
