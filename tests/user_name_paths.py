"""Request paths that try to escape the token directory, for the user-name tests."""
from __future__ import annotations

from hypothesis import strategies as st

# Characters that matter for paths, plus everything else hypothesis likes to try.
TRICKY = st.sampled_from(["/", "\\", ".", "..", "\x00", "%", "%2e", "%2f", "%00", "%25", "~",
                          "-", "@", "_", " ", "\n", "é", "%c3%a9", "a", "Z", "9"])
PATHS = st.one_of(st.text(max_size=140), st.lists(TRICKY, max_size=30).map("".join))
