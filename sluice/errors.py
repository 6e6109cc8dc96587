"""Errors Sluice reports to a user as one clear line."""


class SluiceInputError(ValueError):
    """Bad user input, detected before anything is submitted.

    The message is one line that names the offending input.
    """


class BackendUnavailable(RuntimeError):
    """The backend cannot be reached or refused our credentials."""


class WorkIncomplete(RuntimeError):
    """The work ran, but some items did not succeed; the reports list them."""
