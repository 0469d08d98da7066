"""Whole batches side by side (emotion_onnx.parallel): the same bits as one batch at a time, every
job done once and in order, errors surfaced, and the one-thread engines built only when needed."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier
from emotion_onnx.parallel import SideBySide


@pytest.fixture(scope="module")
def pair(tiny_model):
    # a small token budget, so the 2000 test texts make many batches of many widths
    one = EmotionClassifier(tiny_model, max_batch_tokens=256, batch_workers=1)
    two = EmotionClassifier(tiny_model, max_batch_tokens=256, batch_workers=2)
    return one, two


def test_side_by_side_gives_the_same_bits(pair, test_texts):
    one, two = pair
    assert one._side_by_side is None and two._side_by_side is not None
    logits_one, embeds_one = one.forward(test_texts)
    logits_two, embeds_two = two.forward(test_texts)
    assert two._side_by_side._runners is not None  # the job really ran side by side
    np.testing.assert_array_equal(logits_two, logits_one)
    np.testing.assert_array_equal(embeds_two, embeds_one)
    # and a text alone, on the multi-thread session, gets those bits too
    for i in (0, 7, len(test_texts) - 1):
        np.testing.assert_array_equal(two.logits([test_texts[i]])[0], logits_two[i])


def test_one_thread_engines_are_built_on_the_first_job_of_several_batches(tiny_model, test_texts):
    clf = EmotionClassifier(tiny_model, max_batch_tokens=256, batch_workers=2)
    clf(test_texts[0])
    clf([test_texts[0]] * 3)  # one batch: the multi-thread engine
    assert clf._side_by_side._runners is None
    clf(test_texts[:200])
    assert len(clf._side_by_side._runners) == 2


def test_every_job_once_in_order_on_every_worker():
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(3)

    def make(n):
        return [lambda job, k=k: (k, job) for k in range(n)]

    def work(runner, job):
        if job < 3:  # the first jobs wait for each other: three workers really run at once
            barrier.wait(timeout=10)
        worker, value = runner(job)
        with lock:
            seen.append((worker, value))
        return value * value

    assert SideBySide(make, 3).map(work, list(range(50))) == [i * i for i in range(50)]
    assert sorted(v for _, v in seen) == list(range(50))
    assert {w for w, _ in seen} == {0, 1, 2}


def test_the_first_error_is_raised_after_the_workers_stop():
    done = []

    def work(runner, job):
        if job == 5:
            raise ValueError("job 5 failed")
        time.sleep(0.002)
        done.append(job)
        return job

    side = SideBySide(lambda n: [object()] * n, 2)
    with pytest.raises(ValueError, match="job 5 failed"):
        side.map(work, list(range(40)))
    assert 5 not in done and len(done) < 20  # the other worker stopped taking jobs
    assert side.map(lambda r, j: j + 1, [1, 2, 3]) == [2, 3, 4]  # and it still works


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_batch_workers_must_be_a_positive_int(tiny_model, bad):
    with pytest.raises(ValueError, match="batch_workers must be a whole number of at least 1"):
        EmotionClassifier(tiny_model, batch_workers=bad)
