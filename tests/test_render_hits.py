"""Query results for a person, as `cidx.cli.render_hits` writes them: layout,
colours only where wanted, and user text that never drives the terminal.
(The real command's output through an owner is checked in test_daemon.)"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from cidx.cli.render_hits import PathView, write_results
from cidx.messages import Location, QueryAnswer, SearchResult

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Tty(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def _answer() -> QueryAnswer:
    text = "\n".join(
        [
            "def retry_upload(queue):",
            '    """Retry the upload queue."""',
            "    count = 3  # attempts",
            "    return queue.pop('\x1b[31mred')",
        ]
    )
    hit = SearchResult(
        path="src/up.py",
        start_line=9,
        end_line=12,
        score=0.61234,
        language="python",
        symbol="retry_upload",
        kind="function",
        text=text,
        also=(Location("src/copy.py", 1, 4),),
    )
    return QueryAnswer("upload queue", [hit])


def _write(out: io.StringIO, root: Path) -> str:
    write_results(_answer(), PathView(root, root / "src"), out)
    return out.getvalue()


def test_layout_without_a_terminal_is_plain_text(tmp_path: Path) -> None:
    text = _write(io.StringIO(), tmp_path)
    assert text.splitlines() == [
        " 1. up.py:9-12  0.6123  retry_upload  [function]",
        "    also in copy.py:1-4",
        "❱  9 def retry_upload(queue):",
        '❱ 10     """Retry the upload queue."""',
        "  11     count = 3  # attempts",
        "❱ 12     return queue.pop('\\x1b[31mred')",
        "",
    ]


def test_a_terminal_gets_colours_and_the_same_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    coloured = _write(_Tty(), tmp_path)
    assert ANSI.sub("", coloured) == _write(io.StringIO(), tmp_path)
    assert "\x1b[35mdef\x1b[0m" in coloured  # keyword
    assert "\x1b[90m# attempts\x1b[0m" in coloured  # comment
    assert "\x1b[36m3\x1b[0m" in coloured  # number
    # The escape sequence in the source is shown escaped, inside its string's colour.
    assert "\x1b[33m'\\x1b[31mred'\x1b[0m" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert _write(_Tty(), tmp_path) == _write(io.StringIO(), tmp_path)


def test_no_results_and_a_stream_without_unicode(tmp_path: Path) -> None:
    out = io.StringIO()
    write_results(QueryAnswer("nothing", []), PathView(tmp_path, tmp_path), out)
    assert out.getvalue() == "No results.\n"
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    write_results(_answer(), PathView(tmp_path, tmp_path), ascii_out)
    ascii_out.seek(0)
    assert ascii_out.read().splitlines()[2] == ">  9 def retry_upload(queue):"
