"""How figures read in words: sizes, durations, counts and a sync's summary.

One home for the wording every front end shares — the CLI, the log lines of
live owners, MCP tool results and HTTP — so that a size reads "2.0 MiB"
everywhere and a summary says the same thing wherever it is printed. Plain
strings only: no rich, no markup.
"""

from __future__ import annotations

from cidx.answers import IndexSummary

__all__ = [
    "count",
    "duration",
    "partial_note",
    "plural",
    "printable",
    "size",
    "sync_counts",
    "sync_line",
]

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def size(n: float) -> str:
    """Bytes for a person, in powers of 1024: "812 bytes", "4.0 KiB", "2.3 MiB"."""
    if n < 1024:
        whole = int(n)
        return "1 byte" if whole == 1 else f"{whole:,} bytes"
    value = float(n) / 1024
    i = 0
    while value >= 1024 and i < len(_UNITS) - 1:
        value /= 1024
        i += 1
    return f"{value:.1f} {_UNITS[i]}"


def duration(seconds: float) -> str:
    """ "0.42 s", "12.3 s", "3 min 12 s", "1 h 4 min"."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def count(n: int, word: str, plural_form: str | None = None) -> str:
    """ "1 file", "2,048 files"."""
    return f"{n:,} {plural(n, word, plural_form)}"


def plural(n: int, word: str, plural_form: str | None = None) -> str:
    return word if n == 1 else (plural_form or word + "s")


def sync_counts(summary: IndexSummary) -> str:
    """The figures of a sync: the account of every file it looked at (which
    adds up, see `IndexSummary`), the changes to the index, the chunks."""
    left = summary.chunks_pending
    pending = f", {left:,} to embed in the background" if left else ""
    return (
        f"{summary.files_scanned:,} files scanned: {summary.files_indexed:,} indexed, "
        f"{summary.files_empty:,} empty, {summary.files_skipped:,} skipped, "
        f"{summary.files_failed:,} failed; {summary.files_added:,} added, "
        f"{summary.files_modified:,} modified, {summary.files_deleted:,} deleted; "
        f"chunks: {summary.chunks_embedded:,} embedded, {summary.chunks_reused:,} from cache"
        f"{pending}; {duration(summary.seconds)}"
    )


def sync_line(summary: IndexSummary) -> str:
    """The one line a sync gets: "Synced: 3 files scanned, … ; 0.42 s"."""
    head = "Rebuilt" if summary.rebuilt else ("Indexed" if summary.initialized else "Synced")
    return f"{head}: {sync_counts(summary)}"


# C0 and C1 control characters (and DEL) would move the cursor, end a line
# early or drive the terminal; they are shown as escapes instead.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def printable(text: str) -> str:
    """`text` with control characters escaped, safe to print on one line."""
    if text.isprintable():
        return text
    return text.translate(_ESCAPES)


def partial_note(share: float) -> str:
    """The one line said of an answer from an index still being embedded."""
    return (
        f"Partial answer: {share:.0%} of the index has semantic vectors so far (the rest "
        "are being embedded in the background); keyword matches are complete."
    )
