from deploy.proof.latency import longest_silence_s, normal_threshold_ms, recovery_s
from deploy.proof.ledger import Line


def test_normal_is_twice_the_steady_p99_and_at_least_250_ms_more():
    assert normal_threshold_ms(1000) == 2000
    assert normal_threshold_ms(100) == 350


def test_recovery_is_the_first_of_three_normal_seconds_after_the_fault():
    series = {100: 300, 101: 5000, 102: 4000, 103: 900, 104: 200, 105: 800, 106: 300, 107: 9000}
    assert recovery_s(series, 100.4, 1000, until_s=108) == 103 - 100.4
    assert recovery_s(series, 100.4, 100, until_s=108) is None  # never normal
    assert recovery_s(series, 100.0, 1000, until_s=105) is None  # not before the next fault
    # a second without any stored event is not normal
    gap = {100: 200, 101: 200, 103: 200, 104: 200, 105: 200}
    assert recovery_s(gap, 100, 1000, until_s=106) == 3


def test_a_ledger_line_is_ok_only_when_exact():
    assert Line("x", 1, 1, []).ok and str(Line("x", 1, 1, [])).endswith(" ok")
    assert not Line("x", 1, 2, ["detail"]).ok
    assert "FAIL\n  detail" in str(Line("x", 1, 2, ["detail"]))


def test_the_longest_silence_counts_from_the_phase_edges():
    assert longest_silence_s([101, 102, 103], 100.0, 104.0) == 1.0
    assert longest_silence_s([101, 160], 100.0, 170.0) == 59.0  # a stall in the middle
    assert longest_silence_s([105], 100.0, 400.0) == 295.0  # nothing stored after the start
    assert longest_silence_s([], 100.0, 130.0) == 30.0  # nothing at all
    assert longest_silence_s([90, 200], 100.0, 130.0) == 30.0  # outside the phase
