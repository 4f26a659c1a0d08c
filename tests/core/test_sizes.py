"""Human sizes and durations."""

import math

import pytest

from gristmill.core.sizes import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize("text, expected", [
    (0, 0), (0.0, 0), ("0", 0), (" 0.0 ", 0), ("512B", 512), ("1k", 1000),
    ("300MB", 300_000_000), ("300 mb", 300_000_000), ("4GiB", 4 * 1024**3), ("1.5GB", 1_500_000_000),
    (".5KiB", 512), ("2TB", 2 * 1000**4), ("1tib", 1024**4), (" 7 KB ", 7000),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("value", ["", "lots", "300XB", "-1", "1 2", "MB", True, None, [1],
                                   -5, -0.5, math.nan, math.inf,
                                   1, 1024, 1.9, "1", "512", " 2 "])   # no unit: refused
def test_parse_size_rejects(value):
    with pytest.raises(ValueError):
        parse_size(value)


def test_parse_size_message_names_the_units():
    with pytest.raises(ValueError) as e:
        parse_size("lots")
    assert str(e.value) == ("bad size 'lots': use a number with B, KB, MB, GB, TB "
                            "(or KiB, MiB, GiB, TiB)")


def test_a_size_without_a_unit_names_the_units_to_choose_from():
    # "1" was taken as one byte: a task declared with mem = "1" was killed at once.
    for value, shown in ((1, "1"), ("1", "'1'")):
        with pytest.raises(ValueError) as e:
            parse_size(value)
        assert str(e.value) == (f"size {shown} has no unit: add one of B, KB, MB, GB, TB, "
                                'KiB, MiB, GiB, TiB (e.g. "1MB" or "1GB")')


@pytest.mark.parametrize("text, expected", [
    (30, 30.0), (1.5, 1.5), ("10", 10.0), ("2.5", 2.5), ("90s", 90.0), ("30m", 1800.0),
    ("1h30m", 5400.0), ("1h 30m", 5400.0), ("2d", 172800.0), ("500ms", 0.5), ("1m30s", 90.0),
    ("0s", 0.0),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("value", ["", "soon", "30x", "m30", "1h-", "h", False, None, -1,
                                   math.nan, math.inf, {}])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_parse_duration_message_gives_examples():
    with pytest.raises(ValueError) as e:
        parse_duration("soon")
    assert str(e.value) == "bad duration 'soon': use e.g. \"90s\", \"30m\", \"1h30m\", \"2d\""


@pytest.mark.parametrize("n, text", [
    (None, ""), (0, "0 B"), (999, "999 B"), (1500, "1.5 KB"), (300_000_000, "300.0 MB"),
    (4 * 1000**3, "4.0 GB"), (5 * 1000**5, "5000.0 TB"),
])
def test_format_size(n, text):
    assert format_size(n) == text


@pytest.mark.parametrize("seconds, text", [
    (None, ""), (0.25, "250 ms"), (5, "5.0 s"), (59.9, "59.9 s"), (90, "1m30s"),
    (3599, "59m59s"), (3700, "1h01m"), (90000, "25h00m"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_sizes_round_trip_through_format():
    assert parse_size(format_size(300_000_000).replace(" ", "")) == 300_000_000
