# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long to pause between two checks of a wait-until-ready loop.

A pod is often ready a fraction of a second after a restart; checking only every ``longest``
seconds would make every wait last at least that long. So the checks come ``first`` seconds after
the start, then at twice the time waited so far (0.25, 0.5, 1, 2 s, ...) until ``longest``, and
from there every ``longest`` seconds - client-go's backoff towards a steady period. Every check
time of the plain every-``longest`` schedule stays one, so nothing is seen later than with it;
no pause runs past the deadline.
"""
from __future__ import annotations

from typing import Callable, Iterator

FIRST_PAUSE = 0.25


def pauses(longest: float, deadline: float, clock: Callable[[], float], first: float = FIRST_PAUSE) -> Iterator[float]:
    """Seconds to sleep before each next check (see above); none beyond ``deadline``, a ``clock()`` value."""
    longest = max(0.0, longest)
    waited = 0.0
    while True:
        pause = longest if waited >= longest else min(max(first, 2 * waited), longest) - waited
        yield min(pause, max(0.0, deadline - clock()))
        waited += pause
