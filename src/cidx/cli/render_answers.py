"""Search answers as JSON on stdout: `--json` (one answer) and `--batch` (JSON Lines).

Kept apart from `cidx.cli.render`, and free of rich: a `cidx query --json`
answered by an owner through `cidx.cli.thin` prints its answer without
loading the console library. Notes about the answer (a sync that changed
something, damage, a read-only index) go to stderr through `render`;
`notes_needed` says whether there are any.
"""

from __future__ import annotations

import json
import sys

from cidx.answers import SearchOutcome


def notes_needed(outcome: SearchOutcome) -> bool:
    """Whether `render.render_outcome` prints a note on stderr for `outcome`
    (every condition it prints one for is here)."""
    synced = outcome.sync is not None and outcome.sync.changed_anything
    return outcome.read_only or synced or bool(outcome.warnings)


def write_json(outcome: SearchOutcome, root: str, *, batch: bool) -> None:
    """The answers on stdout: one pretty JSON object, or one line per query (`batch`)."""
    if batch:
        write = sys.stdout.write
        for answer in outcome.answers:
            write(json.dumps(answer.as_json(root), ensure_ascii=False) + "\n")
        return
    sys.stdout.write(json.dumps(outcome.answers[0].as_json(root), ensure_ascii=False, indent=2))
    sys.stdout.write("\n")
