"""Options and parameter types shared by several commands."""
from __future__ import annotations

import click


def progress_enabled(ctx: click.Context | None = None) -> bool:
    """Progress bars only when not quiet and stderr is a terminal."""
    import sys

    ctx = ctx or click.get_current_context(silent=True)
    quiet = bool(ctx and (ctx.find_root().obj or {}).get("verbosity", 0) < 0)
    return not quiet and sys.stderr.isatty()


def verbosity(ctx: click.Context | None = None) -> int:
    ctx = ctx or click.get_current_context(silent=True)
    return int((ctx.find_root().obj or {}).get("verbosity", 0)) if ctx else 0


seed_option = click.option(
    "--seed", type=int, default=None, help="Seed for python, numpy, torch and data workers [default: 0]."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
