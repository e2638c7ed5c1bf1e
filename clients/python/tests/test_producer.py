import threading
import time

import pytest

from runlog_client import InvalidEvent, NotFound, Producer, QueueFull, RunClosed, follow, read, runs


def test_emitted_events_are_stored_in_order_once_flushed(server):
    with Producer(server.url, workspace="ws_1", run="run_1") as producer:
        ids = [producer.emit("console.line", {"line": f"line {index}"}) for index in range(1000)]
        producer.flush(timeout=30)
        stored = list(read(server.url, workspace="ws_1", run="run_1"))
        assert [event["event_id"] for event in stored] == ids
        assert [event["sequence"] for event in stored] == list(range(1, 1001))
        producer.emit("run.completed", {"status": "succeeded"})
    assert [run["id"] for run in runs(server.url, workspace="ws_1")] == ["run_1"]
    assert next(runs(server.url, workspace="ws_1"))["status"] == "succeeded"


def test_a_refused_batch_raises_its_problem_on_the_next_call(server):
    producer = Producer(server.url, workspace="ws_1", run="run_1")
    producer.emit("Not A Type!")
    with pytest.raises(InvalidEvent) as refused:
        producer.flush(timeout=30)
    assert refused.value.status == 400 and refused.value.kind == "invalid-event"
    # The producer goes on: the next batch is stored.
    producer.emit("run.completed", {"status": "failed"})
    producer.flush(timeout=30)
    producer.emit("console.line")
    with pytest.raises(RunClosed):
        producer.close()


def test_a_full_queue_blocks_emit_then_raises(server):
    producer = Producer(server.url, workspace="ws_1", run="run_1", max_queue=5, emit_timeout=0.2, linger=0)
    server.kill()  # nothing drains the queue now
    accepted = 0
    started = time.monotonic()
    with pytest.raises(QueueFull):
        for index in range(100):
            producer.emit("console.line", {"index": index})
            accepted += 1
    assert 5 <= accepted < 100 and time.monotonic() - started >= 0.2
    server.start()
    producer.close()
    assert [event["payload"]["index"] for event in read(server.url, workspace="ws_1", run="run_1")] == list(range(accepted))


def test_a_server_killed_and_restarted_mid_stream_loses_nothing_and_stores_nothing_twice(server):
    """SIGKILL while a Producer emits and a follow() reads: every emitted event is stored exactly
    once and in order, and the follower sees 1..N exactly once, ending with the completion."""
    followed = []

    def reader():
        for event in follow(server.url, workspace="ws_1", run="run_1", read_timeout=20):
            followed.append(event)

    producer = Producer(server.url, workspace="ws_1", run="run_1", max_batch_events=50, linger=0.01)
    follower = threading.Thread(target=reader, daemon=True)
    follower.start()
    emitted = []
    for index in range(3000):
        emitted.append(producer.emit("console.line", {"index": index}))
        if index in (1000, 2000):
            server.kill()
            server.start()
        if index % 100 == 0:
            time.sleep(0.01)  # a producer's pace, so that kills land mid-stream
    emitted.append(producer.emit("run.completed", {"status": "succeeded"}))
    producer.close()
    follower.join(timeout=60)
    assert not follower.is_alive(), "follow() did not end with the run"

    stored = list(read(server.url, workspace="ws_1", run="run_1"))
    assert [event["event_id"] for event in stored] == emitted
    assert [event["sequence"] for event in stored] == list(range(1, len(emitted) + 1))
    assert [event["sequence"] for event in followed] == list(range(1, len(emitted) + 1))


def test_follow_filters_by_type_and_ends_on_a_completed_run(server):
    with Producer(server.url, workspace="ws_1", run="run_1") as producer:
        producer.emit("run.started")
        for index in range(10):
            producer.emit("console.line", {"index": index})
        producer.emit("run.completed", {"status": "succeeded"})
    lines = list(follow(server.url, workspace="ws_1", run="run_1", types=["console.line"]))
    assert [event["payload"]["index"] for event in lines] == list(range(10))
    # Already at the end: the server's 204 ends it at once.
    assert list(follow(server.url, workspace="ws_1", run="run_1", after=12)) == []
    with pytest.raises(NotFound) as missing:
        list(follow(server.url, workspace="ws_1", run="nope"))
    assert missing.value.status == 404 and missing.value.kind == "run-not-found"
