"""Networks of both models. Imports neither ``geocolor.data`` nor ``geocolor.io``."""
from geocolor.models.registry import ARCHITECTURES, build_model

__all__ = ["ARCHITECTURES", "build_model"]
