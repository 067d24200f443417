# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long to pause between two checks of a wait-until-ready loop.

A pod is often ready a fraction of a second after a restart; checking only every ``longest``
seconds would make every wait last at least that long. So the first pauses are short and double
up to ``longest`` (client-go's backoff towards a steady period), and none runs past the deadline.
"""
from __future__ import annotations

from typing import Callable, Iterator

FIRST_PAUSE = 0.25


def pauses(longest: float, deadline: float, clock: Callable[[], float], first: float = FIRST_PAUSE) -> Iterator[float]:
    """Seconds to sleep before each next check: ``first``, doubling, at most ``longest``, never past ``deadline``
    (a ``clock()`` value)."""
    longest = max(0.0, longest)
    pause = min(first, longest)
    while True:
        yield min(pause, max(0.0, deadline - clock()))
        pause = min(pause * 2, longest)
