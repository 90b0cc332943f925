"""Small helpers for the words the tool prints."""
from __future__ import annotations

_IRREGULAR = {"data pass": "data passes", "pass": "passes"}


def count(n, noun, plural=None) -> str:
    """``"1 data pass"``, ``"2 data passes"``, ``"1 worker"``, ``"3 workers"``."""
    n = int(n)
    if n == 1:
        return "1 %s" % noun
    return "%d %s" % (n, plural or _IRREGULAR.get(noun) or noun + "s")
