"""What the Producer and the readers share: their HTTP client, and when and how long to retry."""

import random
from typing import Optional

import httpx

#: Statuses worth retrying: the same request can work later.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def client(base_url: str, token: Optional[str], timeout: httpx.Timeout) -> httpx.Client:
    """A client for the server at ``base_url``, sending ``token`` as a bearer token if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def retry_after(response: Optional[httpx.Response]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header given in seconds, if any."""
    if response is None:
        return None
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def backoff(attempt: int, max_delay: float) -> float:
    """The pause before try ``attempt + 1``: doubling from 0.1 s up to ``max_delay``, with jitter."""
    return min(max_delay, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
