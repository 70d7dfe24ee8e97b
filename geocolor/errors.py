"""The one error hierarchy of geocolor.

Every error a user can cause (a missing file, a foreign model file, a bad config
key) is a :class:`GeocolorError` whose message is one line that names the file and
says what to do. The CLI prints that line and exits 1; nothing here imports click.
"""
from __future__ import annotations


class GeocolorError(Exception):
    """Base class: a failure the user can understand and act on."""


class UsageError(GeocolorError):
    """Arguments that cannot work together (the CLI exits 2 for these)."""


class ConfigError(UsageError):
    """A config file or option value is invalid (unknown key, wrong type)."""


class DataError(GeocolorError):
    """Training or evaluation data is missing, unpaired or unreadable."""


class RasterError(GeocolorError):
    """An input raster is missing, unreadable, or unusable for the model."""


class OutsideBounds(RasterError):
    """An input does not cover the area of ``--bounds``: a batch skips it."""


class ModelFileError(GeocolorError):
    """A model or checkpoint file is missing, foreign, corrupt, unsafe or of the wrong kind."""


class PretrainedWeightsError(GeocolorError):
    """Pretrained (ImageNet) weights were asked for but cannot be found."""


class OutputError(GeocolorError):
    """An output cannot be written (exists, unwritable directory, same as input)."""


class TrainingError(GeocolorError):
    """A training run cannot go on (e.g. its losses stopped being finite numbers)."""
