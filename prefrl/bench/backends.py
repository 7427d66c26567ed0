"""Where the cells of a suite run: a local process pool (default) or a Ray cluster.

Both backends take a picklable function and a list of tasks and yield ``(task, result)`` pairs
as the tasks finish, in any order; a task whose worker died yields an ``Exception`` as its
result. They schedule nothing themselves beyond what the pool or Ray does.

* :class:`LocalBackend`: ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start
  method, one process per core by default, a fresh process per task, torch pinned to one thread.
* :class:`RayBackend`: one ``@ray.remote(num_cpus=1)`` task per cell on ``ray.init(address)``
  (or on a Ray instance that is already initialised). Results are files, so on a cluster the
  out dir must be on a filesystem every node mounts at the same path (NFS, Lustre, ...), and
  prefrl must be installed on every node. Ray is imported only when this backend is used.

>>> from operator import neg
>>> sorted(r for _, r in LocalBackend(workers=1).map_unordered(neg, [1, 2]))   # doctest: +SKIP
[-2, -1]
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

Task = Any
Outcome = tuple[Task, Any]
"""``(task, result)``; ``result`` is an ``Exception`` when the worker itself failed."""


class Backend(Protocol):
    """Runs ``fn(task)`` for every task somewhere and yields the outcomes as they come."""

    name: str

    def map_unordered(self, fn: Callable[[Task], Any], tasks: Sequence[Task]
                      ) -> Iterator[Outcome]:
        """Yield ``(task, fn(task))`` (or ``(task, exception)``) as tasks finish."""
        ...


def cpu_count() -> int:
    """Cores this process may use (its CPU affinity where the platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """End this worker once ``parent`` is gone (it was killed, not interrupted).

    A worker of a killed runner would otherwise train on as an orphan and keep its cell's run
    directory locked. Its run resumes from the last checkpoint on the runner's next call.
    """
    while os.getppid() == parent:
        time.sleep(poll_s)
    os._exit(1)


def _init_worker(watch_parent: bool = True) -> None:
    """Pin torch (and BLAS via the environment, for child libraries) to one thread.

    With ``watch_parent`` (the local pool) the worker also ends with its parent.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if watch_parent:
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True,
                         name="prefrl-parent-watch").start()
    import torch

    torch.set_num_threads(1)


class LocalBackend:
    """A ``spawn`` process pool on this machine: ``workers`` processes (default: one per core).

    Each task gets a fresh process (``max_tasks_per_child=1``), so no state leaks from one run
    into the next. On Ctrl-C the pending tasks are cancelled and the running ones are
    interrupted with the parent; if the parent is killed, each worker ends within a second
    (either way the runs resume on the next call of the runner).
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or cpu_count()
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")

    def map_unordered(self, fn: Callable[[Task], Any], tasks: Sequence[Task]
                      ) -> Iterator[Outcome]:
        """Run the tasks in the pool; yield outcomes as they complete."""
        if not tasks:
            return
        pool = cf.ProcessPoolExecutor(
            max_workers=min(self.workers, len(tasks)), mp_context=mp.get_context("spawn"),
            initializer=_init_worker, max_tasks_per_child=1,
        )
        try:
            futs = {pool.submit(fn, t): t for t in tasks}
            for fut in cf.as_completed(futs):
                try:
                    yield futs[fut], fut.result()
                except Exception as e:  # worker died (BrokenProcessPool) or fn raised
                    yield futs[fut], e
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class RayBackend:
    """One ``ray.remote(num_cpus=1)`` task per cell on a Ray cluster or a local Ray instance.

    ``address``: passed to ``ray.init`` (``"auto"`` joins the cluster this node belongs to;
    ``None`` starts a local instance with ``workers`` CPUs, or all cores). If Ray is already
    initialised in this process (a test, a notebook), that instance is used as it is.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 max_retries: int = 2) -> None:
        self.ray = import_ray()
        self.address, self.workers, self.max_retries = address, workers, max_retries

    def _init(self) -> None:
        if self.ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"address": self.address, "log_to_driver": True}
        if self.address is None and self.workers:
            kwargs["num_cpus"] = self.workers
        self.ray.init(**kwargs)

    def map_unordered(self, fn: Callable[[Task], Any], tasks: Sequence[Task]
                      ) -> Iterator[Outcome]:
        """Submit every task at once (Ray schedules them by CPU); yield as they finish.

        A task whose worker process dies is retried by Ray (``max_retries``); runner tasks are
        resumable, so a retry continues the cell where its checkpoint left it.
        """
        if not tasks:
            return
        ray = self.ray
        self._init()
        remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(_ray_entry)
        refs = {remote.remote(fn, t): t for t in tasks}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        yield refs[ref], ray.get(ref)
                    except Exception as e:  # RayTaskError, WorkerCrashedError, ...
                        yield refs[ref], e
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def _ray_entry(fn: Callable[[Task], Any], task: Task) -> Any:
    _init_worker(watch_parent=False)  # Ray owns its workers' lifetime
    return fn(task)


def import_ray() -> Any:
    """``import ray``, or a clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            "the Ray backend needs Ray: pip install 'ray>=2.9' (or pip install 'prefrl[ray]'), "
            "or use --backend local"
        ) from None
    return ray


def make_backend(name: str, *, workers: int | None = None, address: str | None = None
                 ) -> Backend:
    """``local`` or ``ray`` backend (``ValueError`` for other names)."""
    if name == "local":
        if address:
            raise ValueError("--address is only for --backend ray")
        return LocalBackend(workers)
    if name == "ray":
        return RayBackend(address=address, workers=workers)
    raise ValueError(f"unknown backend {name!r}; known: local, ray")
