from streams.collector.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bursts_then_the_rate_per_instance():
    clock = Clock()
    limiter = RateLimiter(rate=100, burst=500, clock=clock)
    assert limiter.take("a", 500) == 0.0
    assert limiter.take("a", 50) == 0.5  # 50 tokens at 100/s
    assert limiter.take("b", 500) == 0.0  # another instance has its own bucket
    clock.now = 0.5
    assert limiter.take("a", 50) == 0.0
    clock.now = 100.0
    assert limiter.take("a", 500) == 0.0  # refilled, never past the burst
    assert limiter.take("a", 1) > 0
    assert limiter.take("a", 501) == float("inf")
