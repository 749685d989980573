"""The shared wording of sizes, durations and counts."""

from __future__ import annotations

from cidx.formatting import count, duration, printable, size

MiB = 1024 * 1024


def test_sizes_read_in_powers_of_1024() -> None:
    assert [size(n) for n in (0, 1, 1023, 1024, 1536, 5 * MiB, 3 * 1024 * MiB, 2**50)] == [
        "0 bytes",
        "1 byte",
        "1,023 bytes",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
        "1024.0 TiB",
    ]


def test_durations_and_counts() -> None:
    assert [duration(s) for s in (0.1234, 12.34, 192, 3840)] == [
        "0.12 s",
        "12.3 s",
        "3 min 12 s",
        "1 h 4 min",
    ]
    assert count(1, "file") == "1 file" and count(2048, "file") == "2,048 files"
    assert count(2, "match", "matches") == "2 matches"


def test_control_characters_are_escaped() -> None:
    assert printable("a\nb\tc\x1b[31m") == "a\\nb\\tc\\x1b[31m"
    assert printable("naïve 名前") == "naïve 名前"
