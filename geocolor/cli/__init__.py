"""The ``geocolor`` command: a click group, one module per command.

This is the only layer that imports click. It parses options, builds settings,
calls the engine and turns a :class:`~geocolor.errors.GeocolorError` into one line
on stderr with exit status 1 (2 for usage errors); the traceback appears only
with ``-v``.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import click

from geocolor import __version__
from geocolor.errors import GeocolorError, UsageError

log = logging.getLogger("geocolor")


class CommandFailed(click.ClickException):
    """Exit status 1 with ``geocolor: error: <message>`` on stderr."""

    def show(self, file: Any = None) -> None:
        click.echo(f"geocolor: error: {self.format_message()}", err=True)


class Terminated(SystemExit):
    """Raised by a SIGTERM handler: unwinds like Ctrl-C, then ``geocolor: terminated``, exit 143."""


#: Options of ``geocolor`` itself, often typed after the command by mistake.
_TOP_LEVEL_OPTIONS = ("-q", "--quiet", "-v", "--verbose")


class GeocolorGroup(click.Group):
    """A click group that reports geocolor errors as one clean line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GeocolorError as exc:
            verbose = (ctx.obj or {}).get("verbosity", 0) > 0
            if verbose:
                log.exception("failed")
            if isinstance(exc, UsageError):
                raise click.UsageError(str(exc), ctx=_command_context(self, ctx)) from None
            raise CommandFailed(str(exc)) from None
        except click.NoSuchOption as exc:
            if exc.option_name in _TOP_LEVEL_OPTIONS and ctx.parent is None:
                exc.message = (f"{exc.message.rstrip('.')}; {exc.option_name} goes before the "
                               f"command: geocolor {exc.option_name} {ctx.invoked_subcommand} ...")
            raise
        except KeyboardInterrupt:
            click.echo("geocolor: interrupted", err=True)
            ctx.exit(130)
        except Terminated as exc:
            click.echo("geocolor: terminated", err=True)
            ctx.exit(exc.code if isinstance(exc.code, int) else 143)


def _command_context(group: click.Group, ctx: click.Context) -> click.Context:
    """The context of the subcommand that ``ctx`` ran (``colorize``; ``train sar`` through the
    ``train`` group's own), so that a usage error found in its body points at its help."""
    name = ctx.invoked_subcommand
    command = group.get_command(ctx, name) if name else None
    if command is None or isinstance(command, click.Group):
        return ctx
    return click.Context(command, info_name=name, parent=ctx)


def configure_logging(verbosity: int) -> None:
    """Log to stderr once: -q shows warnings, default info, -v debug."""
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    root = logging.getLogger("geocolor")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("geocolor: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # GDAL's and libtiff's own messages (rasterio logs them): geocolor reports failures in one
    # line of its own; the raw lines only with -v.
    gdal = logging.getLogger("rasterio")
    for handler_ in list(gdal.handlers):
        gdal.removeHandler(handler_)
    gdal.addHandler(handler if verbosity > 0 else logging.NullHandler())
    gdal.propagate = False


@click.group(cls=GeocolorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="geocolor")
@click.option("-v", "--verbose", count=True, help="More log output (tracebacks on errors).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Colorize Sentinel-1 SAR scenes and grey photos; train and evaluate the models."""
    verbosity = -1 if quiet else verbose
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbosity
    configure_logging(verbosity)


def _register() -> None:
    from geocolor.cli import average, colorize, evaluate, export, gui, info, train, train_semantic

    train.train.add_command(train_semantic.semantic)
    for command in (info.info, train.train, colorize.colorize, evaluate.evaluate, gui.gui,
                    export.export, average.average):
        main.add_command(command)


_register()
