"""The pauses of a wait-until-ready loop: checks at doubling times up to the longest pause, then every longest pause,
never past the deadline."""
from __future__ import annotations

import itertools

from fake_clock import FakeClock
from okera_auth.module_utils._polling import pauses


def _slept(longest, deadline, count):
    clock = FakeClock()
    for pause in itertools.islice(pauses(longest, deadline, clock), count):
        clock.sleep(pause)
    return clock


def _check_times(longest, count):
    return list(itertools.accumulate(_slept(longest, 1000, count).slept))


def test_checks_come_at_doubling_times_then_every_longest_pause():
    assert _slept(2, 100, 7).slept == [0.25, 0.25, 0.5, 1, 2, 2, 2]
    assert _check_times(2, 7) == [0.25, 0.5, 1, 2, 4, 6, 8]
    assert _check_times(5, 8) == [0.25, 0.5, 1, 2, 4, 5, 10, 15]


def test_every_check_of_the_fixed_schedule_stays_so_nothing_is_seen_later():
    for longest in (1, 2, 3, 5, 7):
        times = set(_check_times(longest, 40))
        assert {longest * step for step in range(1, 20)} <= times, longest


def test_no_pause_runs_past_the_deadline():
    clock = _slept(2, 3, 7)
    assert clock.slept == [0.25, 0.25, 0.5, 1, 1, 0, 0] and clock.now == 3


def test_a_longest_pause_below_the_first_is_kept():
    assert _slept(0.1, 100, 3).slept == [0.1, 0.1, 0.1]
    assert _slept(0, 100, 2).slept == [0, 0]
