"""What the project's config asks of its collection: a new model, or a new name.

A change of the embedding model (a cidx that ships another default model,
or a new `max_length`) and a change of the config's `naming_scheme` each
move the project's collection to another one through a collection
migration (`Migrator`), which the owner starts when it opens the index and
which cuts over and cleans up by itself: searches keep answering from the
old collection until the new one is complete, and the old name stays an
alias of the new one. `config_after` is the config once it has.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from cidx.config import Config, collection_name_for
from cidx.dualwrite._migrator import MODEL_CHANGE, NAMING_CHANGE, Migrator
from cidx.embedding import embedding_settings, max_length_of, model_id
from cidx.identity import NAMING_SCHEMES
from cidx.project import ProjectPaths
from cidx.state.moves import CollectionMigration

__all__ = [
    "CollectionChange",
    "config_after",
    "follow_config",
    "note_for_user",
    "wanted_change",
]

log = logging.getLogger("cidx.dualwrite")


@dataclass(frozen=True)
class CollectionChange:
    """The migration the config asks for."""

    target: str  # the collection to migrate into
    reembed: str | None  # the model to embed with, for a model change
    started_by: str  # MODEL_CHANGE or NAMING_CHANGE
    note: str  # for the user


def wanted_change(paths: ProjectPaths, config: Config) -> CollectionChange | None:
    """The migration that brings the project's collection to the bundled model
    and to the config's naming scheme, if it needs one.

    A collection is renamed only when its name is the one another scheme
    gives: a name the user chose (`cidx collections migrate`) is left alone.
    """
    mode, who, root, scheme = (
        config.storage_mode,
        config.identity.id,
        paths.root,
        config.naming_scheme,
    )
    wanted = model_id(config.embedding.max_length)
    if config.embedding.model_id != wanted:
        return CollectionChange(
            collection_name_for(mode, who, wanted, root, scheme),
            wanted,
            MODEL_CHANGE,
            f"The index in {paths.index_dir} was built with the embedding model "
            f"{config.embedding.model_id}; migrating it to the bundled model {wanted} "
            "(searches answer from the old index until the new one is complete).",
        )
    model = config.embedding.model_id
    named = collection_name_for(mode, who, model, root, scheme)
    others = {collection_name_for(mode, who, model, root, s) for s in NAMING_SCHEMES} - {named}
    if config.collection not in others:
        return None
    return CollectionChange(
        named,
        None,
        NAMING_CHANGE,
        f"The naming scheme of {paths.root} is now {scheme!r}: migrating its collection "
        f"{config.collection} to {named} (searches keep answering meanwhile; the old name "
        "stays an alias of the new one).",
    )


def follow_config(migrator: Migrator, paths: ProjectPaths, config: Config, collection: str) -> None:
    """Resume the collection migration under way, or start the one `config`
    asks for (`wanted_change`) from `collection`, in the owner's worker."""
    change = wanted_change(paths, config)
    if change is not None and migrator.active() is None:
        note_for_user(change.note)
        migrator.start(
            collection, change.target, reembed=change.reembed, started_by=change.started_by
        )
    if migrator.active() is not None:
        migrator.start_worker()


def note_for_user(note: str) -> None:
    """Log `note`, and tell it on stderr too when nothing logs there."""
    log.warning("%s", note)
    # One-shot commands log to the file only; this note is for the user too.
    if not any(type(h) is logging.StreamHandler for h in logging.getLogger("cidx").handlers):
        print(f"cidx: {note}", file=sys.stderr)


def config_after(config: Config, move: CollectionMigration) -> Config | None:
    """The config once `move`'s SOURCE is gone, when it named SOURCE (else None)."""
    if move.source != config.collection:
        return None
    length = max_length_of(move.target_model) or config.embedding.max_length
    return config.model_copy(
        update={"collection": move.target, "embedding": embedding_settings(length)}
    )
