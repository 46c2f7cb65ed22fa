"""The apps the benchmark starts, one process each; every one serves through ``serve``."""

from __future__ import annotations

from typing import Any


def serve(app: Any, port: int) -> None:
    """uvicorn as every Python app under test runs: one process, access log off, warnings only,
    the garbage collector tuned as the example tunes it (``example.tuning``).

    Loop and HTTP parser are uvicorn's ``auto`` choice: uvloop and httptools when installed
    (``uvicorn[standard]``), else asyncio and h11; ``bench.run`` records which in the report.
    """
    import uvicorn

    from example.tuning import tune_garbage_collector

    tune_garbage_collector()  # as the example runs (GC_TUNING=on), for every Python app under test
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning",
                loop="auto", http="auto", lifespan="on")


def serve_workers(factory: str, port: int, workers: int) -> None:
    """The same settings with ``workers`` uvicorn worker processes, each building its app by
    calling ``factory`` (an import string), as a multi-process deployment runs."""
    import uvicorn

    uvicorn.run(factory, factory=True, workers=workers, host="127.0.0.1", port=port, access_log=False,
                log_level="warning", loop="auto", http="auto", lifespan="on")
