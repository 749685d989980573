"""config.json: validation, versioning, atomic writes, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cidx.config import (
    CONFIG_SCHEMA_VERSION,
    load_config,
    new_config,
    save_config,
)
from cidx.embedding import embedding_settings
from cidx.errors import ConfigError
from cidx.project import ProjectPaths, find_root


def _paths(tmp_path: Path) -> ProjectPaths:
    return ProjectPaths(tmp_path)


def test_round_trip(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    config = new_config(paths, embedding=embedding_settings(), chunker_version=1)
    save_config(paths, config)
    loaded = load_config(paths)
    assert loaded == config
    assert loaded.schema_version == CONFIG_SCHEMA_VERSION
    assert loaded.storage_mode == "local"
    assert loaded.project_root == str(tmp_path)
    # Without a git remote the id comes from the path; the name from id and model.
    assert loaded.identity.source == "path" and loaded.project_id is None
    assert loaded.collection.startswith("cidx-path-")
    assert not list(paths.index_dir.glob("*.tmp"))


def test_missing_config_names_the_next_step(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cidx init"):
        load_config(_paths(tmp_path))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(max_file_size=-5), "max_file_size"),
        (lambda d: d.update(storage_mode="cloud"), "storage_mode"),
        (lambda d: d.pop("collection"), "collection"),
        (lambda d: d.update(schema_version=99), "newer|understands up to"),
        (lambda d: d.update(unknown_key=1), "unknown_key"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    paths = _paths(tmp_path)
    save_config(paths, new_config(paths, embedding=embedding_settings(), chunker_version=1))
    data = json.loads(paths.config_file.read_text())
    mutate(data)
    paths.config_file.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message) as info:
        load_config(paths)
    assert str(paths.config_file) in info.value.message


def test_unparsable_json_is_reported(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    paths.index_dir.mkdir()
    paths.config_file.write_text("{not json")
    with pytest.raises(ConfigError, match=r"Cannot read .*config\.json"):
        load_config(paths)


def test_root_discovery(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    deep = repo / "src" / "pkg"
    deep.mkdir(parents=True)
    assert find_root(deep) == repo
    # An initialised sub-project wins over the enclosing git repository.
    sub = repo / "src"
    paths = ProjectPaths(sub)
    save_config(paths, new_config(paths, embedding=embedding_settings(), chunker_version=1))
    assert find_root(deep) == sub
    # Neither: the folder itself.
    loose = tmp_path / "loose"
    loose.mkdir()
    assert find_root(loose) == loose


def test_a_stored_v1_config_keeps_its_collection(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    paths.index_dir.mkdir()
    old = json.loads((Path(__file__).parent / "data" / "config-v1.json").read_text())
    paths.config_file.write_text(json.dumps(old))
    config = load_config(paths)
    assert config.schema_version == CONFIG_SCHEMA_VERSION == 2
    # The random id of a v1 index stays what its collection is named after.
    assert (config.identity.id, config.identity.source) == (old["project_id"], "legacy")
    assert config.project_id is None and config.collection == old["collection"]
    # Brought forward on disk, once.
    assert json.loads(paths.config_file.read_text())["schema_version"] == 2


def test_a_configured_project_id_wins(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    config = new_config(
        paths, embedding=embedding_settings(), chunker_version=1, project_id="team/tool"
    )
    assert (config.identity.id, config.identity.source) == ("team/tool", "config")
    assert config.collection.startswith("cidx-team-tool-")
