"""The machine's speed, as both benches print it: a fixed pure-Python loop, in seconds.

Here because streams and sinks may not import each other and both benches need the same probe;
the VM's speed varies several-fold between days, and figures are compared through it.
"""

from __future__ import annotations

import time


def vm_speed() -> float:
    """Seconds this machine takes for a fixed pure-Python loop."""
    start = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i * i % 7
    return time.perf_counter() - start
