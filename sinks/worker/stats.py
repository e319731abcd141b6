"""What one sink has done, for its log line and for tests; insert threads add to it too."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class SinkStats:
    consumed: int = 0
    rows_written: int = 0
    dead_letters: int = 0
    batches: int = 0
    retries: int = 0
    replays: int = 0
    repeats: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        """Add from any thread (the consuming thread may also bump fields directly)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)
