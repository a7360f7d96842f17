"""The paced outbox: order and pacing per target, rate limits, gone targets, bounded retries."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

import pytest

from adapters.outbox import Outbox, RateLimited, TargetGone


class Recorder:
    """A send function that records (target, payload, time) and fails as scripted."""

    def __init__(self, script: dict[Any, list[Exception]] | None = None) -> None:
        self.sent: list[tuple[Hashable, Any, float]] = []
        self.script = script or {}

    def __call__(self, target: Hashable, payload: Any) -> str:
        failures = self.script.get(payload)
        if failures:
            raise failures.pop(0)
        self.sent.append((target, payload, time.monotonic()))
        return f"ok:{payload}"


def test_order_and_pacing_per_target_and_targets_do_not_wait_for_each_other() -> None:
    rec = Recorder()
    box = Outbox(rec, interval=0.2)
    futures = [box.submit("C1", f"a{i}") for i in range(3)] + [box.submit("C2", "b0")]
    assert [f.result(timeout=5) for f in futures] == ["ok:a0", "ok:a1", "ok:a2", "ok:b0"]
    c1 = [(p, t) for target, p, t in rec.sent if target == "C1"]
    assert [p for p, _ in c1] == ["a0", "a1", "a2"]
    gaps = [b - a for (_, a), (_, b) in zip(c1, c1[1:], strict=False)]
    assert all(g >= 0.19 for g in gaps)
    c2_time = next(t for target, _, t in rec.sent if target == "C2")
    assert c2_time < c1[1][1]  # C2 did not queue behind C1's pacing
    box.close()


def test_rate_limit_waits_retry_after_and_keeps_the_order() -> None:
    rec = Recorder({"first": [RateLimited(0.3)]})
    box = Outbox(rec, interval=0.0)
    start = time.monotonic()
    f1, f2 = box.submit("C1", "first"), box.submit("C1", "second")
    assert f1.result(timeout=5) == "ok:first" and f2.result(timeout=5) == "ok:second"
    assert [p for _, p, _ in rec.sent] == ["first", "second"]
    assert rec.sent[0][2] - start >= 0.29
    box.close()


def test_a_gone_target_is_disabled_once_and_its_queue_dropped() -> None:
    rec = Recorder({"x1": [TargetGone("not_in_channel")]})
    box = Outbox(rec, interval=0.0)
    f1, f2 = box.submit("C_GONE", "x1"), box.submit("C_GONE", "x2")
    ok = box.submit("C_OK", "y")
    with pytest.raises(TargetGone, match="not_in_channel"):
        f1.result(timeout=5)
    with pytest.raises(TargetGone):
        f2.result(timeout=5)
    assert ok.result(timeout=5) == "ok:y"
    assert box.disabled() == {"C_GONE": "not_in_channel"}
    with pytest.raises(TargetGone):  # later sends fail at once, nothing is retried forever
        box.submit("C_GONE", "x3").result(timeout=1)
    assert [p for _, p, _ in rec.sent] == ["y"]
    box.enable("C_GONE")
    assert box.submit("C_GONE", "x4").result(timeout=5) == "ok:x4"
    box.close()


def test_other_failures_are_retried_a_bounded_number_of_times() -> None:
    rec = Recorder({"flaky": [ConnectionError("reset")], "broken": [ValueError("bad")] * 5})
    box = Outbox(rec, interval=0.0, max_attempts=2)
    assert box.submit("C1", "flaky").result(timeout=5) == "ok:flaky"
    with pytest.raises(ValueError, match="bad"):
        box.submit("C1", "broken").result(timeout=5)
    assert box.drain(timeout=2)
    box.close()
