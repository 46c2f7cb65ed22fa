"""The Python process settings the example runs with: a garbage collector sized for a server.

Why: CPython's cyclic collector starts a young-generation pass every 700 new container objects
and, every so often, a full pass over every object the process holds, including the tens of
thousands of module, class and function objects the imports created, which never die. A request
to the server allocates a few hundred containers and frees nearly all of them by reference
counting, so those passes find almost nothing. Measured (``bench.run``, per server CPU-second,
one round, same machine): the collector's passes were about a tenth of the SQLite model's CPU on
a refresh (``perf``: ``gc_collect_main`` and its visitors), and these settings raised ours-sqlite
by 1.17x (refresh), 1.18x (register), 1.15x (flows); ours-memory moved within noise.

* ``gc.freeze()`` after start-up moves everything alive then (imports, the app, its caches'
  empty structures) into a permanent generation that no pass visits again.
* A young generation of 50,000 objects (a few MB at most, and only cyclic garbage waits for it)
  and older generations collected 20 and 100 times less often.

Memory held by real garbage cycles is still reclaimed, later. ``GC_TUNING=off`` keeps CPython's
defaults.
"""

from __future__ import annotations

import gc

#: (young, middle, old): see the module docstring.
THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """Freeze what start-up left alive and collect less often; call once the app is built."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
