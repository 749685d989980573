"""Test helpers: open a project's index in-process and read back its store."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from cidx.engine import Engine
from cidx.messages import IndexSummary
from cidx.owner.lock import OwnerLock
from cidx.project import ProjectPaths


def snapshot(root: Path) -> dict[str, dict[str, Any]]:
    """Every point in the project's store: id → payload."""
    paths = ProjectPaths(root)
    lock = OwnerLock(paths, "test")
    lock.acquire(timeout=30)
    try:
        engine, _ = Engine.open(paths)
        try:
            return dict(engine.store.scroll(engine.config.collection, payload_fields=[]))
        finally:
            engine.close()
    finally:
        lock.release()


def full_snapshot(root: Path) -> dict[str, dict[str, Any]]:
    paths = ProjectPaths(root)
    lock = OwnerLock(paths, "test")
    lock.acquire(timeout=30)
    try:
        engine, _ = Engine.open(paths)
        try:
            ids = [pid for pid, _ in engine.store.scroll(engine.config.collection)]
            return {h.id: h.payload for h in engine.store.retrieve(engine.config.collection, ids)}
        finally:
            engine.close()
    finally:
        lock.release()


def sync(root: Path, **kwargs: Any) -> IndexSummary:
    paths = ProjectPaths(root)
    lock = OwnerLock(paths, "test")
    lock.acquire(timeout=30)
    try:
        engine, _ = Engine.open(paths)
        try:
            return engine.sync(**kwargs)
        finally:
            engine.close()
    finally:
        lock.release()


def clean_rebuild(root: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    """The store a fresh index of the same files has (in a copy of the tree)."""
    copy = scratch / "rebuild"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".code-indexer"), symlinks=True)
    sync(copy)
    return full_snapshot(copy)
