"""Runlog's Python client.

``Producer`` appends a run's events: batched, each with a client-side ``event_id`` so that a
retried batch is never stored twice, retried with backoff while the server is unreachable or
answers 429/502/503/504. ``follow`` iterates over a run's events live and resumes with
``Last-Event-ID`` after any break; ``read`` downloads them; ``runs`` lists runs page by page.
"""

from ._errors import (
    BodyTooLarge,
    Forbidden,
    InvalidEvent,
    LogDeleted,
    NotFound,
    QueueFull,
    RetriesExhausted,
    RunClosed,
    RunlogError,
    SequenceMismatch,
    Unauthorized,
)
from ._producer import Producer
from ._reading import follow, read, runs

__all__ = [
    "Producer",
    "follow",
    "read",
    "runs",
    "RunlogError",
    "InvalidEvent",
    "RunClosed",
    "SequenceMismatch",
    "BodyTooLarge",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "LogDeleted",
    "QueueFull",
    "RetriesExhausted",
]
