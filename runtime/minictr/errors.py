"""One exception tree for minictr, and the one table from exception to HTTP status."""


class MinictrError(Exception):
    """Anything a user did or met that deserves one clear line, not a traceback."""

    status = 500
    from_daemon = False  # True when the client got it as the daemon's answer (the CLI says so, as Docker's)


class InvalidArgument(MinictrError):
    status = 400


class Forbidden(MinictrError):
    """Docker's 403: an operation not allowed on this object (a predefined network, an endpoint in use)."""

    status = 403


class NotFound(MinictrError):
    status = 404


class Conflict(MinictrError):
    status = 409


class NotSupported(MinictrError):
    """A Docker feature minictr does not have (swarm, plugins, build, ...): 501, naming it."""

    status = 501


class Unavailable(MinictrError):
    """Docker's 503 for a part of the engine that is not running here (swarm, never joined)."""

    status = 503


class DaemonUnavailable(MinictrError):
    """The CLI could not reach a daemon, nor start one."""

    status = 503


class NoSpace(MinictrError):
    """A full filesystem, named by a path on it, with the remedy (never `[Errno 28]`)."""

    def __init__(self, path):
        super().__init__(f"no space left on device: {path}: free space on that filesystem")
        self.path = path


class CommandNotFound(MinictrError):
    """The container's command does not exist in the image (Docker exits 127)."""

    status = 400
    exit_code = 127


class CommandNotExecutable(MinictrError):
    status = 400
    exit_code = 126


_BY_STATUS = {400: InvalidArgument, 403: Forbidden, 404: NotFound, 409: Conflict, 501: NotSupported, 503: DaemonUnavailable}


def status_of(error: BaseException) -> int:
    """The HTTP status the API answers for this error."""
    return getattr(error, "status", 500)


def from_status(status: int, message: str) -> MinictrError:
    """The client's side of the table: an API error response back to an exception."""
    error = _BY_STATUS.get(status, MinictrError)(message)
    error.from_daemon = True
    return error
