"""Where the jobs of a bench or sweep run: in this process, in a local process pool, or on Dask.

Each executor maps a job function over jobs and yields ``(job, result)`` as they finish. Results do not
depend on the executor: every job sets its own torch thread count and seeds everything it draws, and a
process runs one job at a time (the trainer seeds torch's global RNG), so the same seed gives the same
numbers serially, in the pool and on Dask. Start Dask workers with ``--nthreads 1``.
"""
from __future__ import annotations

import contextlib
import re
import signal
import sys
import threading
import time

__all__ = ["executor", "sigterm_as_interrupt", "main_script_hidden", "Serial", "Pool", "Dask"]


def _outcome(future) -> dict:
    """A finished future's result; a worker that died (killed for memory, a crash in native code) gives
    ``{"error": ...}`` like a job that raised, so one lost job never ends the grid (it runs again next time)."""
    try:
        return future.result()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - BrokenProcessPool, dask's KilledWorker, CancelledError ...
        return {"error": f"{type(e).__name__}: {e or 'the worker process ended'} (the worker ran out of memory or "
                         "crashed; the run is retried when the grid is run again)"}


@contextlib.contextmanager
def main_script_hidden():
    """While worker processes start, hide the caller's ``__main__`` from multiprocessing's spawn.

    A spawned worker re-runs the main script (or module) before it takes a job — a script that calls
    ``run_sweep`` at top level without ``if __name__ == "__main__":`` would run its whole self again in
    every worker, and the grid would end in a BrokenProcessPool. The jobs are cmkd_lab's own picklable
    functions and records, so the workers never need that script: without its ``__file__`` and
    ``__spec__`` the spawn preparation leaves it out. Restored on exit."""
    main = sys.modules.get("__main__")
    saved = {k: vars(main)[k] for k in ("__file__", "__spec__") if main is not None and k in vars(main)}
    try:
        if main is not None:
            vars(main).pop("__file__", None)
            if "__spec__" in saved:
                main.__spec__ = None
        yield
    finally:
        if main is not None:
            vars(main).update(saved)


class Serial:
    def map_unordered(self, fn, jobs):
        for j in jobs:
            yield j, fn(j)

    def close(self, interrupted: bool = False):
        pass


class Pool:
    def __init__(self, workers: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        self.ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        self.futs = {}

    def map_unordered(self, fn, jobs):
        from concurrent.futures import as_completed
        with main_script_hidden():  # the workers start here (spawn): they need cmkd_lab, not the caller's script
            self.futs = {self.ex.submit(fn, j): j for j in jobs}
        for f in as_completed(self.futs):
            yield self.futs[f], _outcome(f)

    def close(self, interrupted: bool = False):
        if not interrupted:
            self.ex.shutdown(wait=True, cancel_futures=True)
            return
        # Cancel what has not started; SIGTERM the workers so that run_one stops each run after its
        # step and saves it (resumable); give them a minute, then make sure no worker is left.
        procs = list((getattr(self.ex, "_processes", None) or {}).values())
        for f in self.futs:
            f.cancel()
        running = [f for f in self.futs if f.running()]  # includes up to one queued job not yet started
        for p in procs:
            p.terminate()
        t_end = time.monotonic() + 60
        while sum(f.done() for f in running) < min(len(procs), len(running)) and time.monotonic() < t_end:
            time.sleep(0.2)
        for p in procs:
            if p.is_alive():
                p.kill()
        self.ex.shutdown(wait=False, cancel_futures=True)


class Dask:
    def __init__(self, scheduler, workers: int):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as e:
            raise ImportError('Dask scheduling needs dask.distributed: pip install "cmkd_lab[cluster]" '
                              '(or pip install "dask[distributed]")') from e
        self.own = None
        if isinstance(scheduler, Client):
            self.client = scheduler
        elif scheduler == "local":
            self.own = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=None)
            self.client = Client(self.own)
        elif isinstance(scheduler, str) and re.match(r"^(tcp|tls|inproc|ucx)://", scheduler):
            self.client = Client(scheduler)
        else:
            raise ValueError("scheduler must be None (local process pool), 'local' (a Dask LocalCluster), an "
                             f"address like 'tcp://host:8786', or a distributed.Client; got scheduler={scheduler!r}")

    def map_unordered(self, fn, jobs):
        from dask.distributed import as_completed
        futs = {self.client.submit(fn, j, pure=False, key=f"cmkd-{getattr(fn, '__name__', 'job')}-{i}-{time.time_ns()}"): j
                for i, j in enumerate(jobs)}
        for f in as_completed(list(futs)):
            yield futs[f], _outcome(f)

    def close(self, interrupted: bool = False):
        if self.own is not None:
            self.client.close()
            self.own.close()


def executor(workers: int, scheduler, n_jobs: int):
    """(executor, its description) for ``workers`` local processes or a Dask ``scheduler``."""
    if scheduler is not None:
        return Dask(scheduler, workers), "dask"
    if workers <= 1 or n_jobs <= 1:
        return Serial(), "serial"
    return Pool(min(workers, n_jobs)), f"process pool ({min(workers, n_jobs)} workers)"


def sigterm_as_interrupt():
    """In the main thread, make SIGTERM raise KeyboardInterrupt (so workers are stopped cleanly);
    returns the previous handler, or None where signals cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(*_):
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None
