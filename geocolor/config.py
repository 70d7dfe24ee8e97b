"""Settings as frozen dataclasses: a TOML file, then command-line overrides.

Each command defines a frozen dataclass of its settings (defaults included).
:func:`resolve_settings` reads an optional TOML file, rejects keys the dataclass
does not know (naming the key and the file), checks value types, applies the
overrides the user gave on the command line (``None`` means "not given"), and
returns the instance. :func:`save_settings` writes the resolved settings back as
TOML so that every run directory records exactly what it ran with.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from geocolor.errors import ConfigError

T = TypeVar("T")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _accepts(tp: Any, value: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp`` (for the simple types settings use)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args else Any
        return all(_accepts(item, v) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _coerce(tp: Any, value: Any) -> Any:
    """Normalise lists to tuples and ints to floats where the annotation says so."""
    origin = typing.get_origin(tp)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if tp is float and isinstance(value, int):
        return float(value)
    if origin in (typing.Union, types.UnionType) and float in typing.get_args(tp):
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    return value


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file is a :class:`ConfigError`."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def resolve_settings(
    cls: type[T],
    config_file: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    section: str | None = None,
) -> T:
    """Build ``cls`` from defaults < TOML file < overrides.

    Args:
        cls: a frozen dataclass whose fields all have defaults (or are given).
        config_file: optional TOML file; keys may sit at top level or under
            ``[section]``. Keys use underscores or dashes (``lr_gen`` / ``lr-gen``).
        overrides: command-line values; entries whose value is ``None`` are ignored.
        section: table name to read from the file, if present.

    Raises:
        ConfigError: unknown key (names it and the file), wrong type, or a
            required field left unset.
    """
    types_ = _field_types(cls)
    values: dict[str, Any] = {}
    if config_file is not None:
        data = read_toml(Path(config_file))
        if section and isinstance(data.get(section), dict):
            data = data[section]
        for raw_key, value in data.items():
            key = raw_key.replace("-", "_")
            if key not in types_:
                known = ", ".join(sorted(types_))
                raise ConfigError(
                    f"{config_file}: unknown setting {raw_key!r}; known settings: {known}"
                )
            values[key] = value
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in types_:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = value
    for key, value in values.items():
        tp = types_[key]
        if not _accepts(tp, value):
            where = f"{config_file}: " if config_file else ""
            raise ConfigError(f"{where}setting {key!r} = {value!r} has the wrong type")
        values[key] = _coerce(tp, value)
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"incomplete settings for {cls.__name__}: {exc}") from None


def settings_dict(settings: Any) -> dict[str, Any]:
    """The settings as plain JSON/TOML-friendly values (tuples -> lists, paths -> str)."""
    out: dict[str, Any] = {}
    for key, value in dataclasses.asdict(settings).items():
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Path):
            value = str(value)
        out[key] = value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def dump_toml(data: Mapping[str, Any]) -> str:
    """Write a flat mapping as TOML; ``None`` values are left out (TOML has no null)."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items() if value is not None]
    return "\n".join(lines) + "\n"


def save_settings(settings: Any, path: Path) -> None:
    """Save resolved settings as TOML, atomically; reloadable with :func:`resolve_settings`."""
    from geocolor.io.atomic import atomic_write_text

    atomic_write_text(Path(path), dump_toml(settings_dict(settings)))
