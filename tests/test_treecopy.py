"""`cidx.treecopy` on real files: sparse files stay sparse, content is exact."""

from __future__ import annotations

import os
from pathlib import Path

from cidx.treecopy import copy_tree


def test_a_plain_copy_keeps_holes(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    sparse = source / "sparse.dat"
    with open(sparse, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)  # a preallocated, mostly empty file
        fh.seek(10 * 1024 * 1024)
        fh.write(b"data in the middle" * 1000)
        fh.seek(64 * 1024 * 1024 - 5)
        fh.write(b"tail!")
    (source / "dense.bin").write_bytes(os.urandom(300_000))
    if os.stat(sparse).st_blocks * 512 >= 1024 * 1024:
        import pytest

        pytest.skip("this filesystem does not keep holes")
    report = copy_tree(source, tmp_path / "dst")
    copied = tmp_path / "dst" / "sparse.dat"
    assert copied.read_bytes() == sparse.read_bytes()
    assert (tmp_path / "dst/dense.bin").read_bytes() == (source / "dense.bin").read_bytes()
    assert os.stat(copied).st_size == 64 * 1024 * 1024
    # Whether cloned or copied, the holes did not become allocated zeros.
    assert os.stat(copied).st_blocks * 512 < 2 * 1024 * 1024
    assert report.cloned + report.copied == 2
