"""Reading: a live, resuming iterator over a run's events; downloads; the runs list."""

import json
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional

import httpx

from ._errors import error_for
from ._http import RETRYABLE_STATUSES, backoff, client, retry_after


def _client(base_url: str, token: Optional[str], read_timeout: float) -> httpx.Client:
    return client(base_url, token, httpx.Timeout(10.0, read=read_timeout))


def follow(
    base_url: str,
    *,
    workspace: str,
    run: str,
    after: int = 0,
    types: Optional[Iterable[str]] = None,
    token: Optional[str] = None,
    max_retry_delay: float = 5.0,
    read_timeout: float = 60.0,
) -> Iterator[Dict[str, Any]]:
    """The run's events after sequence ``after``, as dicts, replayed and then live.

    It reconnects after any break (a network error, a server restart, 429/502/503/504) with
    ``Last-Event-ID``, so no event is missed and none comes twice, and it ends once the run is
    completed (after ``run.completed``, or on the server's 204 for a reader already at the end).
    ``types`` filters like the server's ``types`` parameter (``["run.*", "console.line"]``). A
    refusal retrying cannot fix (401, 403, 404, 410...) raises its ``RunlogError``. The server
    sends a heartbeat every 15 s; a silence longer than ``read_timeout`` counts as a break.
    """
    params = {"types": ",".join(types)} if types else {}
    path = f"/v1/workspaces/{workspace}/runs/{run}/events"
    last = after
    attempt = 0
    with _client(base_url, token, read_timeout) as client:
        while True:
            headers = {"Accept": "text/event-stream"}
            if last > 0:
                headers["Last-Event-ID"] = str(last)
            wait: Optional[float] = None
            try:
                with client.stream("GET", path, params=params, headers=headers) as response:
                    if response.status_code == 204:
                        return
                    if response.status_code in RETRYABLE_STATUSES:
                        wait = retry_after(response)
                    elif response.status_code >= 400:
                        response.read()
                        raise error_for(response)
                    else:
                        for sequence, data in _frames(response.iter_lines()):
                            attempt = 0
                            if data is None:
                                # An id-only frame: a filtered stream passed the end of the log.
                                last = max(last, sequence)
                                continue
                            if sequence <= last:
                                continue  # seen before a reconnection
                            last = sequence
                            event = json.loads(data)
                            yield event
                            if event.get("type") == "run.completed":
                                return
            except httpx.TransportError:
                pass  # a break: reconnect below
            attempt += 1
            if wait is None:
                wait = backoff(attempt, max_retry_delay)
            time.sleep(wait)


def _frames(lines: Iterable[str]) -> Iterator[tuple]:
    """(sequence, data or None) for each SSE frame with an id; comments and hints are skipped."""
    identifier: Optional[str] = None
    data: List[str] = []
    for line in lines:
        if line == "":
            if identifier is not None:
                yield int(identifier), ("\n".join(data) if data else None)
            identifier, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            identifier = value
        elif field == "data":
            data.append(value)


def read(
    base_url: str, *, workspace: str, run: str, after: int = 0, token: Optional[str] = None, read_timeout: float = 60.0
) -> Iterator[Dict[str, Any]]:
    """The run's events after ``after`` as they are now (an NDJSON download), as dicts."""
    with _client(base_url, token, read_timeout) as client:
        params = {"after_sequence": str(after)} if after else {}
        with client.stream("GET", f"/v1/workspaces/{workspace}/runs/{run}/events", params=params, headers={"Accept": "application/x-ndjson"}) as response:
            if response.status_code >= 400:
                response.read()
                raise error_for(response)
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)


def runs(
    base_url: str,
    *,
    workspace: str,
    status: Optional[str] = None,
    configuration_id: Optional[str] = None,
    page_size: int = 100,
    token: Optional[str] = None,
) -> Iterator[Dict[str, Any]]:
    """The workspace's runs, newest first, following the list's cursor page after page."""
    params: Dict[str, str] = {"limit": str(page_size)}
    if status:
        params["status"] = status
    if configuration_id:
        params["configuration_id"] = configuration_id
    with _client(base_url, token, 30.0) as client:
        while True:
            response = client.get(f"/v1/workspaces/{workspace}/runs", params=params)
            if response.status_code >= 400:
                raise error_for(response)
            page = response.json()
            yield from page["items"]
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]
