"""The devices' side of the telemetry benchmark, run as its own process.

    python -m benchmarks.telemetry_load mqtt SPEC.json   # publish at QoS 1 to the broker
    python -m benchmarks.telemetry_load http SPEC.json   # POST to the gateway

SPEC: {"chain_id", "contract" (AftermarketDevice), "devices": [[device_id, key], …],
"count", "first_sequence", "url", "prefix", "window" and "database_url" (mqtt: payloads
published ahead of those stored at most), "per_request" and "connections" (http)}.
The envelopes (round robin over the devices, sequences rising per device) are signed first,
with libsecp256k1 as a device's firmware would; then the process prints `{"start": <unix
time>}`, sends them all, and prints one JSON line of what it sent (and, over HTTP, what the
gateway answered)."""

from __future__ import annotations

import json
import sys
import threading
import time
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
from coincurve import PrivateKey
from sqlalchemy import func, select

from devkit.devices import connect, encoded, publish_on
from workers.db import Database
from workers.db.oem import DevicePayload
from workers.oem.telemetry import Envelope, TelemetryDigest, payload_hash, telemetry_domain
from workers.signals import catalogue as vss

SIGNALS = {vss.SPEED: 51.0, vss.SOC: 64.5, vss.LATITUDE: 48.13, vss.LONGITUDE: 11.58, vss.IS_LOCKED: True}


def signed(spec: dict[str, Any]) -> list[dict[str, Any]]:
    digest = TelemetryDigest(telemetry_domain(spec["chain_id"], spec["contract"]))
    keys = {int(d): PrivateKey(bytes.fromhex(k.removeprefix("0x"))) for d, k in spec["devices"]}
    sequences = dict.fromkeys(keys, spec["first_sequence"] - 1)
    hashed = payload_hash(SIGNALS)
    now = int(time.time())
    out = []
    for _, device in zip(range(spec["count"]), cycle(keys), strict=False):
        sequences[device] += 1
        envelope = Envelope(device, sequences[device], now, SIGNALS, "")
        raw = keys[device].sign_recoverable(digest(envelope, hashed), hasher=None)
        signature = raw[:64] + bytes([raw[64] + 27])
        out.append(
            {
                "device_id": device,
                "sequence": envelope.sequence,
                "timestamp": now,
                "signals": SIGNALS,
                "signature": "0x" + signature.hex(),
            }
        )
    return out


def over_mqtt(spec: dict[str, Any], envelopes: list[dict[str, Any]]) -> dict[str, Any]:
    """Publishes on one connection in chunks of `window` / 4, keeping at most `window`
    payloads ahead of what the ingest stored (read from `database_url`): a broker at its
    default limits (Mosquitto: `max_queued_messages` 1000) drops a subscriber's messages past
    some backlog, and devices do not all publish at once either."""
    window = spec["window"]
    database = Database(spec["database_url"])
    chunk = max(1, window // 4)
    messages = encoded(envelopes, spec["prefix"])
    base = newest_payload_id(database)
    client = connect(spec["url"], f"bench-devices-{spec['prefix']}")
    started = time.time()
    print(json.dumps({"start": started}), flush=True)
    sent = 0
    try:
        for first in range(0, len(messages), chunk):
            while sent - (newest_payload_id(database) - base) > window - chunk:
                time.sleep(0.05)
            sent += publish_on(client, messages[first : first + chunk])
    finally:
        client.disconnect()
        client.loop_stop()
        database.dispose()
    return {"published": sent, "seconds": time.time() - started}


def stored_payloads(database: Database) -> int:
    """How many device payloads are stored (`count(*)`: a scan, for before and after)."""
    with database.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(DevicePayload)) or 0


def newest_payload_id(database: Database) -> int:
    """The highest stored payload id: one index lookup, cheap enough to poll every 50 ms
    beside the ingest being measured (a `count(*)` there scanned the growing table 40 times a
    second on PostgreSQL, on the same two cores). Ids grow with each insert, so its rise is
    the progress; `stored_payloads` stays the count that is checked."""
    with database.session(read_only=True) as session:
        return session.scalar(select(func.max(DevicePayload.id))) or 0


def over_http(spec: dict[str, Any], envelopes: list[dict[str, Any]]) -> dict[str, Any]:
    """`connections` threads, each with a keep-alive client, POST `per_request` envelopes of
    one device a request (a list, or the bare envelope when it is 1)."""
    per = spec["per_request"]
    by_device: dict[int, list[dict[str, Any]]] = {}
    for e in envelopes:
        by_device.setdefault(e["device_id"], []).append(e)
    requests: list[tuple[str, bytes]] = []
    for device, mine in by_device.items():
        for i in range(0, len(mine), per):
            chunk = mine[i : i + per]
            body = chunk[0] if per == 1 else chunk
            requests.append((f"{spec['url']}/v1/devices/{device}/telemetry", json.dumps(body).encode()))
    # the requests of one device stay in order on one connection (its sequences rise)
    lanes: list[list[tuple[str, bytes]]] = [[] for _ in range(spec["connections"])]
    for i, device in enumerate(by_device):
        lanes[i % len(lanes)].extend(r for r in requests if r[0].endswith(f"/devices/{device}/telemetry"))
    accepted = [0] * len(lanes)
    failures = [0] * len(lanes)

    def lane(n: int) -> None:
        with httpx.Client(headers={"content-type": "application/json"}, timeout=60) as client:
            for url, body in lanes[n]:
                answer = client.post(url, content=body)
                if answer.status_code != 202:
                    failures[n] += 1
                    continue
                doc = answer.json()
                accepted[n] += doc["accepted"] if per > 1 else 1

    threads = [threading.Thread(target=lane, args=(n,)) for n in range(len(lanes))]
    started = time.time()
    print(json.dumps({"start": started}), flush=True)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "requests": len(requests),
        "accepted": sum(accepted),
        "failed_requests": sum(failures),
        "seconds": time.time() - started,
    }


def main() -> int:
    mode, spec_file = sys.argv[1], Path(sys.argv[2])
    spec = json.loads(spec_file.read_text())
    envelopes = signed(spec)
    result = over_mqtt(spec, envelopes) if mode == "mqtt" else over_http(spec, envelopes)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
