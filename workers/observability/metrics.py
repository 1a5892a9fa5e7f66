"""The counters and histograms the workers' code increments (Prometheus' default registry).

In a Celery worker with PROMETHEUS_MULTIPROC_DIR set, every process (each prefork child)
writes them to its own file there and `python -m workers.metrics` sums the files; without
it they stay in the process. What is a state rather than an event (lag, roots by status,
pending transactions, queue depths) is not counted here but read when scraped
(workers/observability/collectors.py), so it cannot drift from the database. The outbox's
nonce-gap and replacement counters live beside their rule in workers/chain/outbox.py (the
chain package imports only the settings and the store).

Every metric is labelled or created at import: a process that never increments one still
exports it (at 0), and the names are the ones deploy/grafana/dimo-workers.json queries
(tests/workers/test_observability.py checks that the dashboard queries only names defined
in `workers/`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from workers.config import get_settings

# prometheus_client opens a process's file in PROMETHEUS_MULTIPROC_DIR when the first metric
# below is made: the directory must exist by then.
_multiproc_dir = get_settings().prometheus_multiproc_dir
if _multiproc_dir is not None:
    _multiproc_dir.mkdir(parents=True, exist_ok=True)

# --- indexer (workers/indexer/sync.py) -----------------------------------------------------------

#: Events of the deployment's contracts applied to the projections.
EVENTS_APPLIED = Counter("workers_indexer_events_applied_total", "Chain events applied to the projections")
#: Blocks applied (every block, with events or not).
BLOCKS_APPLIED = Counter("workers_indexer_blocks_applied_total", "Blocks applied to the index")
#: Reorgs rolled back, and how deep (blocks from the fork point to the indexed block).
REORGS = Counter("workers_indexer_reorgs_total", "Chain reorganisations rolled back")
REORG_DEPTH = Histogram(
    "workers_indexer_reorg_depth_blocks",
    "Blocks rolled back per reorganisation",
    buckets=(1, 2, 3, 5, 8, 13, 21, 34, 64, 128, 256),
)
#: Syncs that stopped with an IndexerError (the index is reported halted).
HALTS = Counter("workers_indexer_halts_total", "Indexer syncs that halted indexing")

# --- Celery tasks (workers/app.py signals) --------------------------------------------------------

#: Tasks finished, by task name and Celery state (SUCCESS, FAILURE, RETRY, …).
TASKS = Counter("workers_celery_tasks_total", "Celery tasks finished, by outcome", ["task", "state"])
