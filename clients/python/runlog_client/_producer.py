"""The Producer: batching, idempotent retries and backpressure for one run's events."""

import collections
import json
import threading
import time
import uuid
from typing import Any, Deque, Dict, List, Optional

import httpx

from ._errors import QueueFull, RetriesExhausted, error_for
from ._http import RETRYABLE_STATUSES, backoff, client, retry_after


class Producer:
    """Appends events to one run from a background thread.

    ``emit`` returns at once; events go out in batches of at most ``max_batch_events`` events or
    ``max_batch_bytes`` bytes, after waiting at most ``linger`` seconds for a batch to fill. Every
    event carries an ``event_id`` (given, or made here), so a batch sent again after a lost answer
    is stored once: the server reports the repeats as duplicates. Batches go out one at a time, in
    order.

    **Retries.** Network errors and 429, 502, 503 and 504 are retried with exponential backoff
    (up to ``max_retry_delay`` seconds, or what ``Retry-After`` says) for up to ``retry_for``
    seconds; after that the batch fails with ``RetriesExhausted``.

    **Backpressure.** At most ``max_queue`` events wait to be sent. ``emit`` on a full queue
    blocks until there is room, for up to ``emit_timeout`` seconds, then raises ``QueueFull``
    (the event is not taken).

    **Errors.** A batch the server refuses for good (400, 409 run-closed, 413...) is dropped and
    its error (a ``RunlogError`` carrying the problem+json) is raised by the next ``emit`` (which
    then does not take its event), ``flush`` or ``close``.

    ``create=True`` creates the run first (an existing run is fine). Use it as a context manager,
    or call ``close()``, which sends what is queued.
    """

    def __init__(
        self,
        base_url: str,
        *,
        workspace: str,
        run: str,
        token: Optional[str] = None,
        create: bool = True,
        configuration_id: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        max_batch_events: int = 500,
        max_batch_bytes: int = 512 * 1024,
        linger: float = 0.05,
        max_queue: int = 10_000,
        emit_timeout: float = 30.0,
        max_retry_delay: float = 5.0,
        retry_for: float = 300.0,
        timeout: float = 30.0,
    ):
        self._client = client(base_url, token, httpx.Timeout(timeout, connect=5.0))
        self._path = f"/v1/workspaces/{workspace}/runs/{run}/events"
        self._max_batch_events = max_batch_events
        self._max_batch_bytes = max_batch_bytes
        self._linger = linger
        self._max_queue = max_queue
        self._emit_timeout = emit_timeout
        self._max_retry_delay = max_retry_delay
        self._retry_for = retry_for
        self._id_prefix = uuid.uuid4().hex[:16]
        self._lock = threading.Condition()
        self._queue: Deque[bytes] = collections.deque()
        self._emitted = 0
        self._acknowledged = 0
        self._error: Optional[BaseException] = None
        self._closing = False
        if create:
            self._create(workspace, run, configuration_id, metadata)
        self._thread = threading.Thread(target=self._send_loop, name=f"runlog-producer-{run}", daemon=True)
        self._thread.start()

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # Emitting

    def emit(self, type: str, payload: Any = None, source: Optional[str] = None, event_id: Optional[str] = None) -> str:
        """Queues one event and returns its ``event_id``."""
        with self._lock:
            event_id = event_id or f"{self._id_prefix}-{self._emitted + 1}"
            event: Dict[str, Any] = {"type": type, "event_id": event_id}
            if payload is not None:
                event["payload"] = payload
            if source is not None:
                event["source"] = source
            line = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
            self._raise_pending()
            if self._closing:
                raise RuntimeError("the Producer is closed")
            deadline = time.monotonic() + self._emit_timeout
            while len(self._queue) >= self._max_queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueueFull(f"{self._max_queue} events are waiting to be sent")
                self._lock.wait(remaining)
                self._raise_pending()
            self._queue.append(line)
            self._emitted += 1
            self._lock.notify_all()
            return event_id

    def flush(self, timeout: Optional[float] = None) -> None:
        """Waits until every event emitted so far is acknowledged (or failed, raising its error)."""
        with self._lock:
            target = self._emitted
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._acknowledged < target and self._error is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"{target - self._acknowledged} events not acknowledged after {timeout} s")
                self._lock.wait(remaining)
            self._raise_pending()

    def close(self) -> None:
        """Sends what is queued, stops the sender and closes the connection."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._closing = True
                self._lock.notify_all()
            self._thread.join()
            self._client.close()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # Sending

    def _create(self, workspace: str, run: str, configuration_id: Optional[str], metadata: Optional[Dict[str, Any]]) -> None:
        body: Dict[str, Any] = {"run_id": run}
        if configuration_id is not None:
            body["configuration_id"] = configuration_id
        if metadata is not None:
            body["metadata"] = metadata
        response = self._with_retries(lambda: self._client.post(f"/v1/workspaces/{workspace}/runs", json=body))
        if response.status_code == 409 and "run-exists" in response.text:
            return
        if response.status_code >= 400:
            raise error_for(response)

    def _next_batch(self) -> Optional[List[bytes]]:
        """Waits for events and takes a batch off the queue; None once closing with nothing left."""
        with self._lock:
            while not self._queue and not self._closing:
                self._lock.wait()
            if not self._queue:
                return None
            # Linger a little for a fuller batch, unless it is full already or we are closing.
            deadline = time.monotonic() + self._linger
            while len(self._queue) < self._max_batch_events and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            batch: List[bytes] = []
            size = 0
            while self._queue and len(batch) < self._max_batch_events:
                line = self._queue[0]
                if batch and size + len(line) + 1 > self._max_batch_bytes:
                    break
                batch.append(self._queue.popleft())
                size += len(line) + 1
            self._lock.notify_all()  # room for blocked emitters
            return batch

    def _send_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            error: Optional[BaseException] = None
            try:
                body = b"\n".join(batch)
                response = self._with_retries(
                    lambda: self._client.post(self._path, content=body, headers={"Content-Type": "application/x-ndjson"})
                )
                if response.status_code >= 400:
                    error = error_for(response)
            except Exception as failure:  # surfaced by the next emit, flush or close
                error = failure
            with self._lock:
                self._acknowledged += len(batch)
                if error is not None and self._error is None:
                    self._error = error
                self._lock.notify_all()

    def _with_retries(self, request: Any) -> httpx.Response:
        """``request()`` until it gets an answer worth keeping, or ``retry_for`` runs out."""
        give_up = time.monotonic() + self._retry_for
        attempt = 0
        while True:
            response: Optional[httpx.Response] = None
            failure: Optional[BaseException] = None
            try:
                response = request()
                if response.status_code not in RETRYABLE_STATUSES:
                    return response
            except httpx.TransportError as error:
                failure = error
            attempt += 1
            delay = retry_after(response)
            if delay is None:
                delay = backoff(attempt, self._max_retry_delay)
            if time.monotonic() + delay > give_up:
                what = f"HTTP {response.status_code}" if response is not None else repr(failure)
                raise RetriesExhausted(f"gave up after {attempt} attempts over {self._retry_for} s: {what}")
            time.sleep(delay)
