"""Experiments: one job (:func:`run_one`), and grids of jobs (:func:`run_bench`, :func:`run_sweep`) run by
one grid runner (:mod:`cmkd_lab.experiments.runner`: plan in :mod:`.engine`, the store's policy in
:mod:`.worker`), on one executor (serial, process pool or Dask)."""
from .bench import run_bench
from .job import ResultExistsError, run_one
from .sweep import parse_grid, run_sweep, split_grid

__all__ = ["run_bench", "run_one", "ResultExistsError", "parse_grid", "run_sweep", "split_grid"]
