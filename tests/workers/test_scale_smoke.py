"""The soak (benchmarks/soak.py) at a tiny size: MQTT ingest, OEM pulls through a Celery worker
against the simulator, a live stream and metered calls run at once on PostgreSQL, and every
count balances: payloads sent = stored, pulls scheduled = done and their signals = the history
rows, charged calls = credits spent = usage counted. Equalities between counts only (each
count above zero), never totals that depend on how fast a loaded machine runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from benchmarks.framework import BenchContext
from benchmarks.soak import MQTT_URL, Size, soak
from devkit.databases import postgres_database, postgres_unavailable
from devkit.deployment import Deployer
from devkit.devnet import ANVIL_KEYS
from devkit.stack import mqtt_answers

TINY = Size(minutes=12, devices=2, linked=2, calls_per_minute=6, streams=1)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_a_tiny_soak_balances(deployment, tmp_path: Path) -> None:
    if reason := postgres_unavailable():
        pytest.skip(reason)
    if not mqtt_answers(MQTT_URL):
        pytest.skip(f"no MQTT broker at {MQTT_URL}")
    anvil, manifest, _path = deployment
    ctx = BenchContext(anvil.w3, manifest, Deployer(anvil.w3, Account.from_key(ANVIL_KEYS[0])), ANVIL_KEYS)
    with postgres_database() as db_url:
        balance = soak(ctx, TINY, tmp_path, db_url)

    assert balance.payloads_sent == TINY.devices * TINY.minutes
    assert balance.payloads_stored == balance.payloads_sent
    assert balance.device_rows == balance.payloads_stored * 5  # every payload's five signals, once
    assert balance.pulls_scheduled > 0
    assert balance.pulls_done == balance.pulls_scheduled, balance.notes
    assert balance.pulls_signals > 0
    assert balance.oem_rows == balance.pulls_signals
    assert balance.calls == TINY.calls_per_minute * TINY.minutes
    assert balance.calls_refused == 0
    assert balance.calls_charged > 0
    assert balance.credits_spent == balance.calls_charged
    assert balance.usage_counted == balance.credits_spent
    assert balance.streams_open == TINY.streams
    assert balance.stream_events > 0
