"""`cidx config set KEY VALUE`: change a setting of the project's config.

The owner of the index applies it (a running `cidx watch` or daemon, or
this process), so a setting that renames the project's collection
(`naming_scheme`) migrates it there with dual writes while searches keep
answering.
"""

from __future__ import annotations

import typer

from cidx.cli.params import JSON, NO_WAIT, WAIT_TIMEOUT

config_app = typer.Typer(
    help="Change settings of the project's config.", no_args_is_help=True, rich_markup_mode=None
)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("set")
def set_(
    key: str = typer.Argument(..., metavar="KEY", help="The setting: naming_scheme."),
    value: str = typer.Argument(..., metavar="VALUE", help="Its new value."),
    no_wait: bool = NO_WAIT,
    wait_timeout: float = WAIT_TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Set KEY to VALUE (naming_scheme: readable or hashed). A new naming scheme
    migrates the project's collection to its new name without downtime."""
    from cidx.cli.migration_render import call_migrating
    from cidx.messages import ConfigSetRequest
    from cidx.owner.protocol import CONFIG_SET

    call_migrating(
        CONFIG_SET,
        ConfigSetRequest(key, value),
        no_wait=no_wait,
        wait_timeout=wait_timeout,
        as_json=as_json,
    )
