"""Observability (workers/observability, `python -m workers.metrics`): the gauges read at
scrape time follow their sources (the node's head, the database's rows, the broker's lists),
the counters move with what the code does, the exporter sums every worker process's
counters, logs are JSON lines carrying request and task ids, and the Grafana dashboard
queries only metrics the code defines."""

from __future__ import annotations

import ast
import json
import logging
import os
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry

from devkit.devnet import free_port, stop_process, wait_ready
from tests.support.brokers import BrokerUnavailableError, rabbitmq_vhost
from tests.support.celery_worker import CeleryWorker, RedisServer
from tests.support.history import History
from tests.workers.test_indexer import make_indexer
from tests.workers.test_reorg import replacement_txs
from workers.app import QUEUES, create_app
from workers.chain.rpc import Rpc
from workers.config import PROJECT_ROOT, Settings
from workers.db.session import Database
from workers.db.settlement import ChainTx, SettlementPeriod, SettlementProduct, SettlementRoot
from workers.gateway.app import create_app as create_gateway
from workers.indexer.sync import ReorgTooDeepError
from workers.metrics import WorkerFilesCollector, node_head
from workers.observability import configure_logging
from workers.observability.collectors import ROOT_STATUSES, TX_STATUSES, BrokerCollector, DatabaseCollector

DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "dimo-workers.json"
#: Metrics the dashboard shows that nothing defines yet (none: the OEM scheduler's and the
#: device ingest's are in `workers/`). The test fails on a name listed here that the code defines.
AWAITED: frozenset[str] = frozenset()


def scrape(*collectors: object) -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)  # type: ignore[arg-type]
    return registry


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


# --- the indexer's lag and counters (a real anvil) ------------------------------------------------


@pytest.fixture
def history(deployment) -> History:
    anvil, manifest, _path = deployment
    return History(anvil.w3, manifest)


def test_indexer_lag_grows_while_the_node_advances_and_the_indexer_is_stopped(deployment, history, sqlite_db):
    anvil, _manifest, path = deployment
    history.token_and_treasury()
    events_before = sample("workers_indexer_events_applied_total")
    indexer = make_indexer(anvil.url, sqlite_db, path)
    report = indexer.sync()
    assert sample("workers_indexer_events_applied_total") - events_before == report.events > 0

    settings = indexer.settings
    rpc = Rpc(anvil.url)
    registry = scrape(DatabaseCollector(indexer.engine, settings, lambda: node_head(rpc)))
    assert registry.get_sample_value("workers_node_up") == 1
    assert registry.get_sample_value("workers_indexer_blocks_behind") == 0
    assert registry.get_sample_value("workers_indexer_seconds_behind") == 0
    assert registry.get_sample_value("workers_indexer_indexed_block") == report.last_block

    # The indexer stops; the node goes on: 5 blocks, then one 90 s later.
    anvil.mine(5)
    anvil.increase_time(90)
    assert registry.get_sample_value("workers_indexer_blocks_behind") == 6
    assert registry.get_sample_value("workers_indexer_head_block") == anvil.w3.eth.block_number
    assert registry.get_sample_value("workers_indexer_seconds_behind") >= 90
    assert registry.get_sample_value("workers_indexer_indexed_block") == report.last_block

    indexer.sync()
    assert registry.get_sample_value("workers_indexer_blocks_behind") == 0
    assert registry.get_sample_value("workers_indexer_seconds_behind") == 0
    assert registry.get_sample_value("workers_indexer_halted") == 0

    # A node that does not answer: reported down, no lag invented.
    nobody = Rpc(f"http://127.0.0.1:{free_port()}", 1.0)
    dead = scrape(DatabaseCollector(indexer.engine, settings, lambda: node_head(nobody)))
    assert dead.get_sample_value("workers_node_up") == 0
    assert dead.get_sample_value("workers_indexer_blocks_behind") is None
    assert dead.get_sample_value("workers_indexer_indexed_block") == anvil.w3.eth.block_number


def test_a_reorg_is_counted_with_its_depth(deployment, history, sqlite_db):
    anvil, _manifest, path = deployment
    rng = random.Random(5)
    history.token_and_treasury()
    history.random_transfers(rng, 6)
    indexer = make_indexer(anvil.url, sqlite_db, path)
    indexer.sync()
    reorgs, depth_count, depth_sum = (
        sample("workers_indexer_reorgs_total"),
        sample("workers_indexer_reorg_depth_blocks_count"),
        sample("workers_indexer_reorg_depth_blocks_sum"),
    )
    anvil.reorg(3, replacement_txs(history, rng, 3))
    report = indexer.sync()
    ((last, fork),) = report.rollbacks
    assert sample("workers_indexer_reorgs_total") == reorgs + 1
    assert sample("workers_indexer_reorg_depth_blocks_count") == depth_count + 1
    assert sample("workers_indexer_reorg_depth_blocks_sum") == depth_sum + (last - fork) >= depth_sum + 3


def test_a_halt_is_counted_and_the_index_reported_halted(deployment, history, sqlite_db):
    anvil, _manifest, path = deployment
    rng = random.Random(6)
    history.token_and_treasury()
    anvil.mine(10)
    indexer = make_indexer(anvil.url, sqlite_db, path, reorg_window=3)
    indexer.sync()
    history.random_transfers(rng, 6)
    indexer.sync()
    halts = sample("workers_indexer_halts_total")
    anvil.reorg(6, replacement_txs(history, rng, 6))
    with pytest.raises(ReorgTooDeepError):
        indexer.sync()
    assert sample("workers_indexer_halts_total") == halts + 1
    rpc = Rpc(anvil.url)
    registry = scrape(DatabaseCollector(indexer.engine, indexer.settings, lambda: node_head(rpc)))
    assert registry.get_sample_value("workers_indexer_halted") == 1


# --- settlement and the outbox, from the database --------------------------------------------------


def _root(status: str, n: int) -> SettlementRoot:
    return SettlementRoot(
        root="0x" + f"{n:064x}",
        status=status,
        total=n,
        leaf_count=1,
        product_ids="[]",
        cumulative_taken="[]",
        data_hash="0x" + f"{n:064x}",
    )


def _tx(status: str, n: int, sent_at: datetime | None) -> ChainTx:
    return ChainTx(
        purpose=f"test:{n}",
        chain_id=31337,
        sender="0x" + "11" * 20,
        nonce=n,
        to="0x" + "22" * 20,
        data="0x",
        raw="0x",
        tx_hash="0x" + f"{n:064x}",
        status=status,
        sent_at=sent_at,
    )


def test_roots_by_status_and_the_outbox_match_the_database_rows(db_url):
    rng = random.Random(11)
    database = Database(db_url)
    now = datetime.now(UTC)
    roots = [rng.choice(ROOT_STATUSES[:6]) for _ in range(23)]
    txs = [rng.choice(TX_STATUSES) for _ in range(17)]
    oldest_pending = 0.0
    with database.session() as session:
        session.add_all(_root(status, n) for n, status in enumerate(roots, start=1))
        for n, status in enumerate(txs, start=1):
            sent_at = now - timedelta(seconds=10 * n)
            if status in ("signed", "sent"):
                oldest_pending = max(oldest_pending, 10.0 * n)
            session.add(_tx(status, n, sent_at))
        session.add(SettlementProduct(product_id=7, next_period=100, carry=0, taken=0))
        session.add(SettlementProduct(product_id=8, next_period=104, carry=0, taken=0))
        for period in (97, 98, 99):
            session.add(
                SettlementPeriod(
                    product_id=7,
                    period=period,
                    released=1,
                    carry_in=0,
                    paid=1,
                    carry_out=0,
                    orders=1,
                    accounts=1,
                )
            )
    settings = Settings(database_url=db_url, epoch_seconds=100, settlement_grace_seconds=50)
    # The wall clock at 10,560 s: periods before 105 ended more than the grace ago.
    collector = DatabaseCollector(database.engine, settings, lambda: (0, 0), clock=now.timestamp)
    registry = scrape(collector)
    by_status = {
        s: registry.get_sample_value("workers_settlement_roots", {"status": s}) for s in ROOT_STATUSES
    }
    assert by_status == {s: roots.count(s) for s in ROOT_STATUSES}
    by_status = {s: registry.get_sample_value("workers_tx_outbox", {"status": s}) for s in TX_STATUSES}
    assert by_status == {s: txs.count(s) for s in TX_STATUSES}
    oldest = registry.get_sample_value("workers_tx_oldest_pending_seconds")
    assert oldest == pytest.approx(oldest_pending, abs=2)
    assert registry.get_sample_value("workers_settlement_periods_closed") == 3
    assert registry.get_sample_value("workers_database_up") == 1
    assert registry.get_sample_value("workers_indexer_blocks_behind") is None  # no health row yet

    collector.clock = lambda: 10_560.0
    assert scrape(collector).get_sample_value("workers_settlement_periods_behind") == 105 - 100

    # A row changes: the next scrape says so (nothing to drift).
    with database.session() as session:
        session.query(SettlementRoot).filter(SettlementRoot.id == 1).update({"status": "revoked"})
    again = scrape(collector)
    expected = roots[:]
    expected[0] = "revoked"
    revoked = again.get_sample_value("workers_settlement_roots", {"status": "revoked"})
    assert revoked == expected.count("revoked")
    database.dispose()


def test_a_database_that_does_not_answer_is_reported_down(tmp_path):
    database = Database("postgresql://postgres@127.0.0.1:9/none?connect_timeout=2")
    registry = scrape(DatabaseCollector(database.engine, Settings(), lambda: (0, 0)))
    assert registry.get_sample_value("workers_database_up") == 0
    assert registry.get_sample_value("workers_settlement_roots", {"status": "accepted"}) is None


# --- queue depths, from the broker -------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def _queue(broker_url: str, sends: dict[str, int], priority: int | None = None) -> None:
    celery = create_app(Settings(broker_url=broker_url))
    task_of = {"indexer": "indexer.sync", "oem": "oem.schedule", "settlement": "settlement.sweep"}
    with celery.connection_for_write() as conn:
        for queue, count in sends.items():
            for _ in range(count):
                celery.send_task(task_of[queue], connection=conn, priority=priority)


def test_queue_depths_are_the_redis_lists_of_each_queue(redis_server):
    _queue(redis_server.url, {"indexer": 3, "oem": 2})
    _queue(redis_server.url, {"indexer": 1}, priority=9)  # kept in the queue's priority list
    registry = scrape(BrokerCollector(redis_server.url, QUEUES))
    assert registry.get_sample_value("workers_broker_up") == 1
    depths = {q: registry.get_sample_value("workers_celery_queue_length", {"queue": q}) for q in QUEUES}
    assert depths == {"indexer": 4, "oem": 2, "settlement": 0, "datasets": 0, "access": 0}
    assert registry.get_sample_value("workers_celery_unacked") == 0

    down = scrape(BrokerCollector(f"redis://127.0.0.1:{free_port()}/0", QUEUES))
    assert down.get_sample_value("workers_broker_up") == 0
    assert down.get_sample_value("workers_celery_queue_length", {"queue": "indexer"}) is None


def test_queue_depths_on_rabbitmq_by_a_passive_declare():
    try:
        context = rabbitmq_vhost()
        url = context.__enter__()
    except BrokerUnavailableError as exc:
        pytest.skip(str(exc))
    try:
        _queue(url, {"settlement": 2})
        registry = scrape(BrokerCollector(url, QUEUES))
        assert registry.get_sample_value("workers_broker_up") == 1
        assert registry.get_sample_value("workers_celery_queue_length", {"queue": "settlement"}) == 2
        # never declared (no task sent, no worker): none waiting
        assert registry.get_sample_value("workers_celery_queue_length", {"queue": "datasets"}) == 0
    finally:
        context.__exit__(None, None, None)


# --- the exporter process ----------------------------------------------------------------------------

_INCREMENT = (
    "import sys; from workers.observability.metrics import EVENTS_APPLIED, TASKS; "
    "EVENTS_APPLIED.inc(int(sys.argv[1])); TASKS.labels('indexer.sync', 'SUCCESS').inc()"
)


def test_the_exporter_sums_every_worker_process_and_reads_the_sources(sqlite_db, redis_server, tmp_path):
    root = tmp_path / "metrics"
    env = {"DATABASE_URL": sqlite_db, "BROKER_URL": redis_server.url, "RPC_URL": "http://127.0.0.1:9"}
    base = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env}
    # two worker services, each with its own directory (their process ids could be equal)
    for service, amount in (("indexer", "2"), ("oem", "3")):
        subprocess.run(
            [sys.executable, "-c", _INCREMENT, amount],
            env={**base, "PROMETHEUS_MULTIPROC_DIR": str(root / service)},
            check=True,
            timeout=60,
        )
    _queue(redis_server.url, {"oem": 2})
    port = free_port()
    log = tmp_path / "exporter.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.metrics"],
        env={**base, "PROMETHEUS_MULTIPROC_DIR": str(root), "METRICS_PORT": str(port)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_ready(process, lambda: httpx.get(url, timeout=2).status_code == 200, "the exporter", log=log)
        text = httpx.get(url, timeout=10).text
    finally:
        stop_process(process)
    lines = set(text.splitlines())
    assert "workers_indexer_events_applied_total 5.0" in lines
    assert 'workers_celery_tasks_total{state="SUCCESS",task="indexer.sync"} 2.0' in lines
    assert 'workers_celery_queue_length{queue="oem"} 2.0' in lines
    assert "workers_database_up 1.0" in lines and "workers_node_up 0.0" in lines
    assert 'workers_settlement_roots{status="accepted"} 0.0' in lines
    first = json.loads(log.read_text().splitlines()[0])  # the exporter's own log: JSON lines
    assert first["event"].startswith("metrics exporter on") and first["level"] == "info"


# --- structured logs with request and task ids -------------------------------------------------------


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_the_gateway_echoes_the_request_id_and_binds_it_to_its_log_lines(sqlite_db, capsys):
    app = create_gateway(Settings(database_url=sqlite_db, log_format="json"))
    with TestClient(app) as client:
        capsys.readouterr()
        # the metered fast path (the index has no health row yet: a logged refusal)
        fast = client.get("/v1/products/1/vehicles/2/signals/latest", headers={"X-Request-ID": "trace-42"})
        # FastAPI's routing (a query parameter the fast path does not take), no id sent
        routed = client.get("/v1/products/1/vehicles/2/signals/latest?names=a&x=1")
        # an unusable id is replaced
        replaced = client.get("/healthz", headers={"X-Request-ID": "has space"})
    assert fast.status_code == 503 and fast.headers["x-request-id"] == "trace-42"
    generated = routed.headers["x-request-id"]
    assert routed.status_code in (422, 503) and re.fullmatch(r"[0-9a-f]{32}", generated)
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    lines = _json_lines(capsys.readouterr().err)
    refusals = [e for e in lines if e.get("logger") == "workers.gateway.refusals"]
    assert [e["request_id"] for e in refusals] == ["trace-42", generated]
    path = "/v1/products/1/vehicles/2/signals/latest"
    assert all(e["event"].startswith(f"refused GET {path}") for e in refusals)
    assert all(e["level"] == "info" and e["timestamp"].endswith("Z") for e in refusals)


def test_a_celery_task_logs_with_its_task_id_and_is_counted(capsys):
    configure_logging(Settings(log_format="json"))
    celery = create_app(Settings(broker_url="memory://"))

    @celery.task(name="access.observability_probe")
    def probe(n: int) -> int:
        logging.getLogger("workers.probe").info("probing %d", n)
        return n

    before = sample("workers_celery_tasks_total", {"task": "access.observability_probe", "state": "SUCCESS"})
    task_id = uuid.uuid4().hex
    assert probe.apply(args=(3,), task_id=task_id).get() == 3
    (line,) = [e for e in _json_lines(capsys.readouterr().err) if e.get("logger") == "workers.probe"]
    assert line["event"] == "probing 3"
    assert line["task_id"] == task_id and line["task_name"] == "access.observability_probe"
    after = sample("workers_celery_tasks_total", {"task": "access.observability_probe", "state": "SUCCESS"})
    assert after == before + 1
    logging.getLogger("workers.probe").info("after the task")
    (outside,) = [e for e in _json_lines(capsys.readouterr().err) if e.get("logger") == "workers.probe"]
    assert "task_id" not in outside


def test_a_real_worker_logs_json_with_the_task_id_and_writes_its_counters(sqlite_db, redis_server, tmp_path):
    metrics_dir = tmp_path / "metrics" / "oem"
    env = {
        "DATABASE_URL": sqlite_db,
        "BROKER_URL": redis_server.url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    worker = CeleryWorker(env, "oem", tmp_path)
    try:
        result = create_app(Settings(broker_url=redis_server.url)).send_task("oem.schedule")
        wait_ready(
            worker.process,
            lambda: any(e.get("task_id") == result.id for e in _json_lines(worker.log.read_text())),
            "the task's log line",
            timeout=60,
            log=worker.log,
        )
    finally:
        worker.stop()
    lines = _json_lines(worker.log.read_text())
    assert any(e["event"].endswith("ready.") for e in lines)  # Celery's own lines, as JSON
    (done,) = [e for e in lines if e.get("task_id") == result.id and "succeeded" in e["event"]]
    assert done["task_name"] == "oem.schedule" and done["logger"] == "celery.app.trace"
    counted = scrape(WorkerFilesCollector(tmp_path / "metrics"))
    assert (
        counted.get_sample_value("workers_celery_tasks_total", {"task": "oem.schedule", "state": "SUCCESS"})
        == 1
    )


# --- the dashboard cannot drift from the code ---------------------------------------------------------

_CONSTRUCTORS = {
    "Counter": "counter",
    "CounterMetricFamily": "counter",
    "Histogram": "histogram",
    "HistogramMetricFamily": "histogram",
    "Summary": "summary",
    "Gauge": "gauge",
    "GaugeMetricFamily": "gauge",
    # workers/observability/collectors.py's two gauge helpers
    "_gauge": "gauge",
    "_by_label": "gauge",
}
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_PROMQL_WORDS |= {"and", "or", "unless"}


def exported_series() -> set[str]:
    """Every series name the metrics defined in `workers/` expose (a counter `x` is `x_total`,
    a histogram `x` is `x_bucket`, `x_sum`, `x_count`)."""
    names: set[str] = set()
    for path in (PROJECT_ROOT / "workers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            first = node.args[0]
            if (
                func not in _CONSTRUCTORS
                or not isinstance(first, ast.Constant)
                or not isinstance(first.value, str)
            ):
                continue
            kind, name = _CONSTRUCTORS[func], first.value
            if kind == "counter":
                names.add(name if name.endswith("_total") else f"{name}_total")
            elif kind == "histogram":
                names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
            elif kind == "summary":
                names.update({name, f"{name}_sum", f"{name}_count"})
            else:
                names.add(name)
    return names


def queried_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, grouping labels, ranges,
    strings and Grafana variables removed; what is left and not a function call is a name)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in _PROMQL_WORDS:
            continue
        found.add(match.group())
    return found


def dashboard_panels() -> list[dict]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return [p for p in panels if p.get("type") != "row"]


def test_the_dashboard_is_a_grafana_dashboard_on_a_prometheus_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    panels = dashboard_panels()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        uid = "${" + variable["name"] + "}"
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_every_metric_the_dashboard_queries_is_defined_in_the_code():
    exported = exported_series()
    # the parser finds definitions of each kind (else an empty set would pass nothing)
    assert {"gateway_requests_total", "gateway_request_seconds_bucket", "gateway_streams_open"} <= exported
    assert {
        "workers_tx_nonce_gaps_total",
        "workers_settlement_roots",
        "workers_celery_queue_length",
    } <= exported
    exprs = [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]
    queried = set().union(*(queried_metrics(expr) for expr in exprs))
    # the reader keeps names only (else every label would be "missing")
    assert queried_metrics('rate(x_bucket{a="b"}[5m]) / on (le) y') == {"x_bucket", "y"}
    missing = queried - exported
    assert missing <= AWAITED, f"the dashboard queries metrics nothing defines: {sorted(missing - AWAITED)}"
    arrived = AWAITED & exported
    assert not arrived, f"{sorted(arrived)} are defined now: remove them from AWAITED"
    # the panels an operator asked for are there
    for wanted in (
        "workers_indexer_blocks_behind",
        "workers_indexer_reorgs_total",
        "workers_settlement_roots",
        "workers_tx_outbox",
        "workers_tx_nonce_gaps_total",
        "workers_celery_queue_length",
        "gateway_refusals_total",
        "gateway_credits_spent_total",
        "workers_oem_rate_limited_total",
        "workers_oem_reauth_total",
    ):
        assert wanted in queried, wanted
