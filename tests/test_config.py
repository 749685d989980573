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
from cidx.dualwrite import wanted_change
from cidx.embedding import embedding_settings, model_id
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
    assert config.schema_version == CONFIG_SCHEMA_VERSION == 5
    assert config.storage_mode == "local" and config.server is None
    # The random id of a v1 index stays what its collection is named after.
    assert (config.identity.id, config.identity.source) == (old["project_id"], "legacy")
    assert config.project_id is None and config.collection == old["collection"]
    # Brought forward on disk, once.
    assert json.loads(paths.config_file.read_text())["schema_version"] == 5


def test_a_stored_v2_config_is_brought_forward_unchanged(tmp_path: Path) -> None:
    """v3 adds storage_mode "server" with its "server" block; a v2 config
    (tests/data/config-v2.json, as the v2 code wrote it) keeps every value."""
    paths = _paths(tmp_path)
    paths.index_dir.mkdir()
    old = json.loads((Path(__file__).parent / "data" / "config-v2.json").read_text())
    paths.config_file.write_text(json.dumps(old))
    config = load_config(paths)
    assert config.schema_version == CONFIG_SCHEMA_VERSION == 5
    assert config.storage_mode == "local" and config.server is None
    assert config.identity.id == old["identity"]["id"] == "github.com/acme/tool"
    assert config.collection == old["collection"]
    on_disk = json.loads(paths.config_file.read_text())
    assert on_disk == {**old, "schema_version": 5, "server": None, "naming_scheme": "readable"}


def test_a_stored_v3_server_config_keeps_its_own_collection(tmp_path: Path) -> None:
    """v4 adds "shared_collection" to the "server" block; a v3 server config
    (tests/data/config-v3.json, as the v3 code wrote it) keeps a collection of
    its own and every other setting."""
    paths = _paths(tmp_path)
    paths.index_dir.mkdir()
    old = json.loads((Path(__file__).parent / "data" / "config-v3.json").read_text())
    paths.config_file.write_text(json.dumps(old))
    config = load_config(paths)
    assert config.schema_version == CONFIG_SCHEMA_VERSION == 5
    assert config.storage_mode == "server" and config.server is not None
    assert config.server.url == "local:/srv/qdrant-test"
    assert config.server.shared_collection is None
    assert config.collection == old["collection"]
    on_disk = json.loads(paths.config_file.read_text())
    assert on_disk == {
        **old,
        "schema_version": 5,
        "server": {**old["server"], "shared_collection": None},
        "naming_scheme": "readable",
    }


def test_a_stored_v4_config_keeps_its_names_under_the_readable_scheme(tmp_path: Path) -> None:
    """v5 adds "naming_scheme"; a v4 config (tests/data/config-v4.json, as the
    v4 code wrote it) names its collection the "readable" way, so it gets
    that scheme and keeps its collection's name: opening it migrates nothing
    but the model (the v4 cidx shipped an older one), into the same name with
    the bundled model's part."""
    paths = _paths(tmp_path)
    paths.index_dir.mkdir()
    old = json.loads((Path(__file__).parent / "data" / "config-v4.json").read_text())
    paths.config_file.write_text(json.dumps(old))
    config = load_config(paths)
    assert config.schema_version == CONFIG_SCHEMA_VERSION == 5
    assert config.naming_scheme == "readable" and config.collection == old["collection"]
    root = Path(old["project_root"])
    stored, bundled = old["embedding"]["model_id"], model_id()
    assert stored != bundled
    change = wanted_change(ProjectPaths(root), config)
    assert change is not None and change.reembed == bundled
    assert change.target == old["collection"].replace(
        stored.replace("@", "-"), bundled.replace("@", "-")
    )
    assert json.loads(paths.config_file.read_text()) == {
        **old,
        "schema_version": 5,
        "naming_scheme": "readable",
    }
    hashed = config.model_copy(update={"naming_scheme": "hashed"})
    change = wanted_change(ProjectPaths(root), hashed)
    assert change is not None and change.reembed == bundled
    assert change.target == f"cidx-d855f75f82-{bundled.replace('@', '-')}"


def test_a_server_config_needs_its_server_block(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    save_config(paths, new_config(paths, embedding=embedding_settings(), chunker_version=1))
    data = json.loads(paths.config_file.read_text())
    for mode, server in (("server", None), ("local", {"url": "https://h:6333"})):
        paths.config_file.write_text(json.dumps({**data, "storage_mode": mode, "server": server}))
        with pytest.raises(ConfigError, match='a "server" block goes with storage_mode "server"'):
            load_config(paths)
    # A config from a newer cidx is refused as newer (how an older cidx sees a newer config).
    paths.config_file.write_text(json.dumps({**data, "schema_version": CONFIG_SCHEMA_VERSION + 1}))
    with pytest.raises(ConfigError, match="Upgrade cidx"):
        load_config(paths)


def test_a_configured_project_id_wins(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    config = new_config(
        paths, embedding=embedding_settings(), chunker_version=1, project_id="team/tool"
    )
    assert (config.identity.id, config.identity.source) == ("team/tool", "config")
    assert config.collection.startswith("cidx-team-tool-")
