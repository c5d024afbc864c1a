import os
import tempfile

import pytest
import torch

# Teachers are cached per session in a temporary directory, never in ~/.cache.
_CACHE = tempfile.mkdtemp(prefix="cmkd_lab_test_cache_")
os.environ.setdefault("CMKD_LAB_CACHE", _CACHE)
os.environ.setdefault("CMKD_LAB_FAST", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def small_task():
    from cmkd_lab.data import make_synthetic_task
    return make_synthetic_task(n_teacher=400, n_student=400, seed=0)
