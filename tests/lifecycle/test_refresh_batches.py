"""How the beat hands a tick's claim to workers: a few connections to a task (unit tests; a
real worker runs such batches in tests/lifecycle/test_worker.py)."""

import logging

from connections import tasks
from connections.lifecycle import Outcome


def sizes(n: int) -> list[int]:
    return [len(batch) for batch in tasks.task_batches(list(range(n)))]


def test_a_claim_is_spread_over_the_refresh_threads_in_whole_waves_of_bounded_tasks(settings):
    settings.REFRESH_THREADS, settings.REFRESH_TASK_SIZE = 4, 20
    assert sizes(0) == []
    assert sizes(3) == [1, 1, 1]  # fewer than the threads: one each, all side by side
    assert sizes(10) == [3, 3, 2, 2]  # one wave: every thread as busy as the others
    assert sizes(81) == [11] + [10] * 7  # 80 fit one wave of 20s; 81 take two waves of 10-11
    assert sizes(1000) == [20] * 12 + [19] * 40  # a wake-up burst: 13 waves, none too long
    batches = tasks.task_batches(list(range(57)))
    assert [pk for batch in batches for pk in batch] == list(range(57))  # each once, in order
    settings.REFRESH_THREADS = 0  # misconfigured: still every connection, in bounded tasks
    assert sizes(30) == [15, 15]


def test_one_connection_failing_does_not_stop_the_rest_of_its_batch(monkeypatch, caplog):
    unclaimed = []

    def refresh(pk, *, reason):
        if pk == 2:
            raise RuntimeError("the database went away")
        return Outcome.REFRESHED if pk != 3 else Outcome.FRESH

    monkeypatch.setattr(tasks, "connection_refresh", refresh)
    monkeypatch.setattr(tasks, "connection_unclaim", unclaimed.append)
    with caplog.at_level(logging.ERROR, logger="connections.tasks"):
        assert tasks.refresh_connections_task([1, 2, 3, 4]) == 2
    assert unclaimed == [2, 3]  # the failed one and the one with nothing to do
    assert "refreshing connection 2 failed" in caplog.text
