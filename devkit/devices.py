"""A plug-in device's side of MQTT: publishing signed telemetry envelopes at QoS 1 on
`{prefix}/devices/{deviceId}/telemetry` (what the story and the ingest benchmark do)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from workers.oem.telemetry import topic_of

#: QoS 1 messages a publisher keeps unacknowledged at once.
IN_FLIGHT = 1_000


def connect(url: str, client_id: str) -> mqtt.Client:
    """A connected MQTT 3.1.1 client (every broker speaks it) with its network thread running.
    The user name is the URL's, or the client id (the dev kit's broker wants one)."""
    parts = urlsplit(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(parts.username or client_id, parts.password)
    client.max_inflight_messages_set(IN_FLIGHT)
    client.max_queued_messages_set(0)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=30)
    client.loop_start()
    return client


def encoded(envelopes: Iterable[dict[str, Any]], prefix: str = "dimo") -> list[tuple[str, bytes]]:
    """Each signed envelope as (its device's topic, its JSON): what goes on the wire."""
    return [(topic_of(e["device_id"], prefix), json.dumps(e).encode()) for e in envelopes]


def publish_on(client: mqtt.Client, messages: Iterable[tuple[str, bytes]], timeout: float = 60.0) -> int:
    """Publishes (topic, payload) messages at QoS 1 on a connected client and returns once the
    broker acknowledged every one (PUBACK); how many were published."""
    sent = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in sent:
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"the broker did not acknowledge message {info.mid}")
    return len(sent)


def publish(
    url: str,
    envelopes: Iterable[dict[str, Any]],
    client_id: str,
    *,
    prefix: str = "dimo",
    timeout: float = 60.0,
) -> int:
    """Publishes each signed envelope on its device's topic at QoS 1 and returns once the broker
    acknowledged every one (PUBACK); how many were published."""
    client = connect(url, client_id)
    try:
        return publish_on(client, encoded(envelopes, prefix), timeout)
    finally:
        client.disconnect()
        client.loop_stop()
