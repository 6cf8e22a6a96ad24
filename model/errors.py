"""The exceptions users see, and the exit codes every fkd command shares.

A message is one sentence naming the file or flag at fault. The CLIs print it and exit with
the error's ``exit_code``; nothing else reaches the user as a traceback.
"""

#: Exit codes, the same for all five commands.
EXIT_DONE = 0
EXIT_FAILED = 1  # the inputs or the environment did not allow the job (unreadable file, no camera, ...)
EXIT_USAGE = 2  # the command line itself is wrong (bad flag value, conflicting options)
EXIT_PARTIAL = 3  # done, but some inputs were skipped (fkd-predict on a folder with unreadable photos)


class FkdError(Exception):
    """Bad input (file, weights, camera, data): the CLIs print the message and exit 1."""

    exit_code = EXIT_FAILED


class UsageError(FkdError):
    """A flag or argument that cannot work whatever the files hold: exit 2, like typer's own."""

    exit_code = EXIT_USAGE
