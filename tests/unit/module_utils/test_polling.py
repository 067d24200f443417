"""The pauses of a wait-until-ready loop: short at first, doubling, at most the longest, never past the deadline."""
from __future__ import annotations

import itertools

from fake_clock import FakeClock
from okera_auth.module_utils._polling import pauses


def _slept(longest, deadline, count, first=0.25):
    clock = FakeClock()
    schedule = pauses(longest, deadline, clock, first)
    for pause in itertools.islice(schedule, count):
        clock.sleep(pause)
    return clock


def test_pauses_start_short_and_double_up_to_the_longest():
    assert _slept(2, 100, 7).slept == [0.25, 0.5, 1, 2, 2, 2, 2]
    assert _slept(5, 100, 6).slept == [0.25, 0.5, 1, 2, 4, 5]


def test_no_pause_runs_past_the_deadline():
    clock = _slept(2, 3, 6)
    assert clock.slept == [0.25, 0.5, 1, 1.25, 0, 0] and clock.now == 3


def test_a_longest_pause_below_the_first_is_kept():
    assert _slept(0.1, 100, 3).slept == [0.1, 0.1, 0.1]
    assert _slept(0, 100, 2).slept == [0, 0]
