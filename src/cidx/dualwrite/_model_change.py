"""A change of the embedding model as a collection migration, and the config after one.

An index whose config names another model than the one this cidx embeds
with (an older cidx's model, or the bundled one with another max length)
migrates to a collection named for the bundled model with `--reembed`; when
a migration drops the collection the config names, the config names its
TARGET (and TARGET's model) from then on.
"""

from __future__ import annotations

from cidx.config import Config, collection_name_for
from cidx.embedding import embedding_settings, max_length_of, model_id
from cidx.project import ProjectPaths
from cidx.state.moves import CollectionMigration

__all__ = ["config_after", "model_change"]


def model_change(paths: ProjectPaths, config: Config) -> tuple[str, str, str] | None:
    """(the model to migrate to, the collection to migrate into, a note for the
    user) when the index holds another model's vectors, else None."""
    wanted = model_id(config.embedding.max_length)
    if config.embedding.model_id == wanted:
        return None
    target = collection_name_for(config.storage_mode, config.identity.id, wanted, paths.root)
    note = (
        f"The index in {paths.index_dir} was built with the embedding model "
        f"{config.embedding.model_id}; migrating it to the bundled model {wanted} "
        "(searches answer from the old index until the new one is complete)."
    )
    return wanted, target, note


def config_after(config: Config, move: CollectionMigration) -> Config | None:
    """The config once `move`'s SOURCE is gone, when it named SOURCE (else None)."""
    if move.source != config.collection:
        return None
    length = max_length_of(move.target_model) or config.embedding.max_length
    return config.model_copy(
        update={"collection": move.target, "embedding": embedding_settings(length)}
    )
