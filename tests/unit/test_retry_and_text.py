"""Unit tests of embedworker.retry.backoff_delay and embedworker.text.clean_text."""

from __future__ import annotations

import random

import pytest

from embedworker.retry import backoff_delay
from embedworker.text import clean_text

BASE = 300.0
CAP = 3600.0


class FixedRandom(random.Random):
    """A Random whose random() always gives ``value``: makes the jitter exact."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


NO_JITTER = FixedRandom(0.0)
MOST_JITTER = FixedRandom(0.999999)


# --- backoff_delay ----------------------------------------------------------------------


def test_first_retry_waits_the_base_delay() -> None:
    assert backoff_delay(1, BASE, CAP, NO_JITTER) == BASE


def test_first_retry_with_jitter_is_close_to_base() -> None:
    delay = backoff_delay(1, BASE, CAP, random.Random(1))
    assert 0.75 * BASE <= delay <= BASE


@pytest.mark.parametrize("retry_count", [0, -1, -100])
def test_retry_counts_below_one_count_as_the_first(retry_count: int) -> None:
    assert backoff_delay(retry_count, BASE, CAP, NO_JITTER) == BASE


def test_delay_doubles_with_every_retry() -> None:
    delays = [backoff_delay(n, 1.0, 1_000_000.0, NO_JITTER) for n in range(1, 11)]
    assert delays == [2.0 ** (n - 1) for n in range(1, 11)]


def test_delay_is_capped() -> None:
    # 300, 600, 1200, 2400, then 4800 > 3600 is capped.
    assert backoff_delay(4, BASE, CAP, NO_JITTER) == 2400.0
    assert backoff_delay(5, BASE, CAP, NO_JITTER) == CAP
    assert backoff_delay(6, BASE, CAP, NO_JITTER) == CAP
    assert backoff_delay(50, BASE, CAP, NO_JITTER) == CAP


def test_delay_never_decreases_without_jitter() -> None:
    delays = [backoff_delay(n, 0.5, 100.0, NO_JITTER) for n in range(1, 200)]
    assert delays == sorted(delays)
    assert delays[-1] == 100.0


def test_base_larger_than_cap_gives_the_cap() -> None:
    assert backoff_delay(1, 500.0, 60.0, NO_JITTER) == 60.0


def test_jitter_takes_at_most_a_quarter_off() -> None:
    assert backoff_delay(1, BASE, CAP, MOST_JITTER) == pytest.approx(0.75 * BASE, rel=1e-5)
    assert backoff_delay(1, BASE, CAP, MOST_JITTER) >= 0.75 * BASE
    assert backoff_delay(1, BASE, CAP, FixedRandom(0.5)) == pytest.approx(0.875 * BASE)


@pytest.mark.parametrize("retry_count", [1, 2, 3, 4, 5, 10, 70])
def test_jitter_keeps_the_delay_within_bounds(retry_count: int) -> None:
    raw = min(CAP, BASE * 2.0 ** (retry_count - 1))
    rng = random.Random(20240601 + retry_count)
    delays = [backoff_delay(retry_count, BASE, CAP, rng) for _ in range(500)]
    assert all(0.75 * raw <= delay <= raw for delay in delays)
    # The jitter actually spreads the delays out.
    assert max(delays) - min(delays) > 0.1 * raw


def test_seeded_random_is_deterministic() -> None:
    first = [backoff_delay(n, BASE, CAP, random.Random(42)) for n in range(1, 8)]
    second = [backoff_delay(n, BASE, CAP, random.Random(42)) for n in range(1, 8)]
    other = [backoff_delay(n, BASE, CAP, random.Random(43)) for n in range(1, 8)]
    assert first == second
    assert first != other


def test_default_random_source_stays_within_bounds() -> None:
    delays = [backoff_delay(2, BASE, CAP) for _ in range(200)]
    assert all(0.75 * 2 * BASE <= delay <= 2 * BASE for delay in delays)


@pytest.mark.parametrize("retry_count", [63, 64, 65, 1024, 1025, 10_000, 10**9, 10**100])
def test_huge_retry_counts_do_not_overflow(retry_count: int) -> None:
    assert backoff_delay(retry_count, BASE, CAP, NO_JITTER) == CAP
    delay = backoff_delay(retry_count, BASE, CAP, random.Random(7))
    assert 0.75 * CAP <= delay <= CAP


def test_zero_delay_configuration_gives_zero() -> None:
    assert backoff_delay(1, 0.0, 0.0, NO_JITTER) == 0.0
    assert backoff_delay(10**6, 0.0, 0.0, NO_JITTER) == 0.0


def test_zero_base_gives_zero_for_early_retries() -> None:
    assert [backoff_delay(n, 0.0, CAP, NO_JITTER) for n in range(1, 65)] == [0.0] * 64


def test_zero_base_gives_zero_for_huge_retry_counts() -> None:
    assert backoff_delay(65, 0.0, CAP, NO_JITTER) == 0.0


# --- clean_text -------------------------------------------------------------------------


def test_plain_text_is_unchanged() -> None:
    assert clean_text("Hello, world.", 100) == "Hello, world."


def test_nul_bytes_are_removed() -> None:
    assert clean_text("a\x00b\x00\x00c", 100) == "abc"
    assert clean_text("\x00", 100) == ""


def test_nul_between_spaces_leaves_one_space() -> None:
    assert clean_text("a \x00 b", 100) == "a b"


def test_lone_surrogates_are_removed() -> None:
    cleaned = clean_text("bad\ud800 text\udfff here\udc00", 100)
    assert cleaned == "bad text here"
    cleaned.encode("utf-8")  # would raise UnicodeEncodeError if a surrogate were left


def test_real_non_bmp_characters_are_kept() -> None:
    text = "emoji \U0001f600 and math \U0001d518 kept"
    assert clean_text(text, 100) == text
    assert clean_text("naïve café 中文", 100) == "naïve café 中文"


def test_whitespace_is_collapsed_and_stripped() -> None:
    text = "  \t first\n\n second \r\n third\u00a0\u2003fourth\x0b\x0c  "
    assert clean_text(text, 100) == "first second third fourth"


@pytest.mark.parametrize("text", ["", " ", "   \t\n\r  ", "\u00a0\u2003", "\x00 \x00", "\ud800"])
def test_empty_or_whitespace_gives_empty(text: str) -> None:
    assert clean_text(text, 100) == ""


def test_text_is_cut_to_max_chars() -> None:
    assert clean_text("abcdefghij", 4) == "abcd"
    assert len(clean_text("x" * 10_000, 8000)) == 8000


def test_cut_is_applied_after_collapsing() -> None:
    assert clean_text("a      b      c", 5) == "a b c"


def test_cut_does_not_leave_trailing_whitespace() -> None:
    assert clean_text("abc def", 4) == "abc"


def test_short_text_is_not_padded() -> None:
    assert clean_text("abc", 10) == "abc"


@pytest.mark.parametrize("max_chars", [1, 2, 3, 7, 50])
def test_result_never_exceeds_max_chars(max_chars: int) -> None:
    text = "  The  quick\tbrown \x00fox\n jumps\ud800 over   the lazy dog  " * 3
    cleaned = clean_text(text, max_chars)
    assert 0 < len(cleaned) <= max_chars
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    assert "\x00" not in cleaned
