"""The skip mark of the CUDA tests (tests/ is on sys.path: tests/conftest.py lives there)."""
from __future__ import annotations

import pytest
import torch

#: tests/conftest.py hides GPUs so that the suite matches CI; this says how to run these.
requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs CUDA (the suite hides GPUs: CUDA_VISIBLE_DEVICES=0 pytest -k cuda on a GPU machine)",
)
