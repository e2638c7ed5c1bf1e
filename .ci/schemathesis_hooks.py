"""Schemathesis hooks for Runlog's CI run (`.ci/schemathesis`).

A live event stream ends only when its run completes, and the runs schemathesis creates never
do: it would wait on every such response until its timeout. So cases that ask for a stream
(SSE by `format`, `stream` or `Accept`, or NDJSON with `follow`) are left out; the Swift test
suite covers streams with real clients. Every other case runs with all checks.
"""
import schemathesis


def _is_stream(case) -> bool:
    query = case.query or {}
    headers = {key.lower(): str(value) for key, value in (case.headers or {}).items()}
    return (
        str(query.get("format")) == "sse"
        or str(query.get("stream")).lower() == "true"
        or str(query.get("follow")).lower() == "true"
        or "text/event-stream" in headers.get("accept", "")
    )


@schemathesis.hook
def filter_case(context, case) -> bool:
    return not _is_stream(case)
