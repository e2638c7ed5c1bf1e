"""Errors: what the server refused (with its problem+json), and what the client gave up on."""

from typing import Any, Dict

import httpx


class RunlogError(Exception):
    """The server refused a request in a way retrying cannot fix.

    ``status`` is the HTTP status, ``problem`` the problem+json body (RFC 9457) as a dict, and
    ``kind`` its slug (``invalid-event``, ``run-closed``...).
    """

    def __init__(self, status: int, problem: Dict[str, Any]):
        self.status = status
        self.problem = problem
        self.kind = str(problem.get("type", "")).rsplit("/", 1)[-1]
        super().__init__(f"{status} {self.kind}: {problem.get('detail', problem.get('title', ''))}")


class InvalidEvent(RunlogError):
    """400: an event, a body or a parameter the server does not accept (``problem['line']``)."""


class Unauthorized(RunlogError):
    """401: no token, or an expired or forged one."""


class Forbidden(RunlogError):
    """403: the token does not cover this workspace, run or scope."""


class NotFound(RunlogError):
    """404: no such run."""


class RunClosed(RunlogError):
    """409 run-closed: the run is completed; nothing more may be appended."""


class SequenceMismatch(RunlogError):
    """409 sequence-mismatch: ``expected_last_sequence`` differed (``problem['last_sequence']``)."""


class LogDeleted(RunlogError):
    """410: retention deleted the run's events."""


class BodyTooLarge(RunlogError):
    """413: a batch, or one event, over the server's limits."""


class QueueFull(Exception):
    """``Producer.emit`` waited ``emit_timeout`` seconds for room in its queue."""


class RetriesExhausted(Exception):
    """The server stayed unreachable or unavailable for longer than the Producer retries."""


_BY_KIND = {"run-closed": RunClosed, "sequence-mismatch": SequenceMismatch}
_BY_STATUS = {400: InvalidEvent, 401: Unauthorized, 403: Forbidden, 404: NotFound, 410: LogDeleted, 413: BodyTooLarge}


def error_for(response: httpx.Response) -> RunlogError:
    """The typed error for a refused response."""
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            raise ValueError
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:200]}
    kind = str(problem.get("type", "")).rsplit("/", 1)[-1]
    cls = _BY_KIND.get(kind) or _BY_STATUS.get(response.status_code) or RunlogError
    return cls(response.status_code, problem)
