"""A reconcile (or `map`) that cannot produce an answer raises one of these: `RetryError` for
something transient (the host retries with exponential backoff), `PermanentError` for something
only a change to the object can fix (not retried until it changes). Any other exception escaping a
plugin is reported as a retry, with its type and message."""


class ReconcileError(Exception):
    """Base of the two kinds of failure."""

    retry = True

    @property
    def message(self) -> str:
        return str(self)


class RetryError(ReconcileError):
    """Transient: retried with backoff."""

    retry = True


class PermanentError(ReconcileError):
    """Only a change to the object can fix it: not retried until it changes."""

    retry = False
