"""`python -m workers.oem.mqtt_ingest`: signed device telemetry over MQTT (DESIGN.md §3.7).

Devices publish their signed envelopes (`workers.oem.telemetry`) at QoS 1 on
`dimo/devices/{deviceId}/telemetry` (`dimo`: MQTT_TOPIC_PREFIX). This process holds one MQTT
session at MQTT_URL (client id MQTT_CLIENT_ID, persistent: the broker keeps what it has not
had acknowledged while the process is away), subscribed to `dimo/devices/+/telemetry` (as the
shared group
MQTT_SHARED_GROUP when one is set, so several processes split the devices), and loops:

0. as each message arrives (paho's network thread), parse it, hash its signals and recover its
   signer (`TelemetryVerifier.precheck`: no database), beside the batch being stored;
1. take up to INGEST_BATCH_SIZE messages (waiting at most INGEST_BATCH_WAIT once one is in);
2. verify the rest and store them in one transaction (`telemetry.ingest_batch`: devices from
   the cached index, the sequence claims, one multi-row statement per table);
3. acknowledge every message of the batch (PUBACK, the paho manual-ack API) only once that
   transaction committed.

So a crash at any point loses nothing (the broker redelivers what was not acknowledged) and
duplicates nothing (a redelivered payload's sequence is already claimed: refused as
`replayed`, and acknowledged). A refused payload is counted by reason
(`workers_ingest_refused_total{reason}`), logged and acknowledged; a database failure leaves
the batch unacknowledged and is retried. Prometheus metrics are served on
INGEST_METRICS_PORT.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import Gauge, start_http_server
from sqlalchemy.exc import SQLAlchemyError

from workers.chain.deployment import connect
from workers.config import Settings, get_settings
from workers.db import Database
from workers.oem.telemetry import (
    Checked,
    Envelope,
    TelemetryRefused,
    TelemetryVerifier,
    device_of_topic,
    ingest_batch,
    parse_json,
    record,
    telemetry_verifier,
    topic_of,
)

log = logging.getLogger(__name__)

#: How long an MQTT 5 session outlives its connection at the broker (seconds).
SESSION_EXPIRY = 7 * 24 * 3600
#: Unacknowledged messages the broker may have in flight to this process (MQTT 5 Receive
#: Maximum: the protocol's largest, so batches fill; MQTT 3.1.1 brokers use their own limit).
RECEIVE_MAXIMUM = 65_535
#: Seconds between retries of a batch the database failed.
RETRY_SECONDS = 1.0
WAITING = Gauge(
    "workers_ingest_waiting", "MQTT messages received and not yet taken into a batch (the backlog)"
)
#: Packets the network thread reads each time the socket is readable (paho reads one).
READ_BURST = 1_000


class _LeanProperties(Properties):
    """paho's MQTT 5 properties, made without rebuilding paho's name and type tables for each
    one (they are the same for every instance: shared from one made at import) and read at
    once when a packet has none (what devices' messages carry). paho makes one for every
    message it receives: building the tables was the largest cost of a message in its
    network thread."""

    _TABLES = Properties(PacketTypes.PUBLISH)

    def __init__(self, packetType: int) -> None:  # noqa: N803 - paho's signature
        for name in ("types", "names", "properties"):
            object.__setattr__(self, name, getattr(self._TABLES, name))
        object.__setattr__(self, "packetType", packetType)

    def unpack(self, buffer: bytes) -> tuple[Properties, int]:
        if buffer[:1] == b"\x00":  # a property length of 0: nothing to read or clear
            return self, 1
        return super().unpack(buffer)


# paho decodes every received packet's properties with this class (the same behaviour, cheaper)
_packet.Properties = _LeanProperties  # type: ignore[misc]


class _BurstClient(mqtt.Client):
    """paho's client reading every packet already received when its socket turns readable,
    instead of one per wait in `select` (what kept paho's network thread the ingest's busiest
    part under load: a wait and a wake-up for each message)."""

    def loop_read(self, max_packets: int = READ_BURST) -> mqtt.MQTTErrorCode:
        for _ in range(max(max_packets, READ_BURST)):
            if self._sock is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN:
                break
            if rc > 0:
                return self._loop_rc_handle(rc)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


@dataclass(frozen=True)
class Received:
    """A message as it came in, with the connection it came on (an ack goes on that one only)
    and what its payload came to before any database is read (`TelemetryVerifier.precheck`)."""

    message: mqtt.MQTTMessage
    connection: int
    checked: Checked | TelemetryRefused


class MqttIngest:
    """One MQTT session and the batch loop over it."""

    def __init__(self, settings: Settings, database: Database, verifier: TelemetryVerifier) -> None:
        self.settings = settings
        self.database = database
        self.verifier = verifier
        self.stored = 0
        self._inbox: queue.Queue[Received] = queue.Queue()
        self._connection = 0
        self._connected = threading.Event()
        self._client = self._make_client()

    # --- the MQTT side (paho's network thread) ------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        v5 = self.settings.mqtt_protocol == "5"
        client = _BurstClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.mqtt_client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        url = urlsplit(self.settings.mqtt_url)
        if url.username:
            client.username_pw_set(url.username, url.password)
        if url.scheme == "mqtts":
            client.tls_set()
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: mqtt.ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("the MQTT broker refused the connection: %s", reason)
            return
        self._connection += 1
        group = self.settings.mqtt_shared_group
        topic = topic_of("+", self.settings.mqtt_topic_prefix)
        if group:
            topic = f"$share/{group}/{topic}"
        client.subscribe(topic, qos=1)
        self._connected.set()
        log.info("subscribed to %s at %s (connection %d)", topic, self.settings.mqtt_url, self._connection)

    def _on_disconnect(self, *_args: object) -> None:
        self._connected.clear()
        log.warning("disconnected from the MQTT broker; reconnecting")

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        # Parsed, hashed and its signer recovered here, in the network thread, so that this
        # overlaps the batch loop's waits on the database (the recovery runs without the GIL).
        try:
            checked = self.verifier.precheck(self.envelope(message))
        except Exception as exc:  # one escaping here would stop paho's thread: refuse instead
            log.exception("checking a message on %s failed", message.topic)
            checked = TelemetryRefused("bad_payload", f"unreadable: {exc!r}")
        self._inbox.put(Received(message, self._connection, checked))

    def start(self, timeout: float = 10.0) -> None:
        """Connects (persistent session) and starts paho's network thread."""
        url = urlsplit(self.settings.mqtt_url)
        host, port = url.hostname or "127.0.0.1", url.port or (8883 if url.scheme == "mqtts" else 1883)
        if self.settings.mqtt_protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY
            properties.ReceiveMaximum = RECEIVE_MAXIMUM
            self._client.connect(host, port, keepalive=30, clean_start=False, properties=properties)
        else:
            self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            self._client.loop_stop()
            raise ConnectionError(f"no MQTT connection to {self.settings.mqtt_url} within {timeout} s")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # --- the batch loop (the caller's thread) -------------------------------------------------

    def take(self, poll: float = 0.5) -> list[Received]:
        """The next batch: what is waiting, topped up for at most INGEST_BATCH_WAIT (empty if
        nothing came within `poll` seconds)."""
        try:
            batch = [self._inbox.get(timeout=poll)]
        except queue.Empty:
            return []
        size = self.settings.ingest_batch_size
        deadline = time.monotonic() + self.settings.ingest_batch_wait
        while len(batch) < size:
            try:
                batch.append(self._inbox.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._inbox.get(timeout=remaining))
            except queue.Empty:
                break
        WAITING.set(self._inbox.qsize())
        return batch

    def envelope(self, message: mqtt.MQTTMessage) -> Envelope | TelemetryRefused:
        try:
            device_id = device_of_topic(message.topic, self.settings.mqtt_topic_prefix)
            return Envelope.parse(parse_json(message.payload, self.settings.telemetry_max_bytes), device_id)
        except TelemetryRefused as refused:
            return refused

    def process(self, batch: list[Received], stop: threading.Event | None = None) -> None:
        """Verifies and stores the batch (retrying while the database fails), then acks it."""
        checked = [r.checked for r in batch]
        while True:
            try:
                outcomes = ingest_batch(self.database, self.verifier, checked)
                break
            except SQLAlchemyError:
                log.exception("storing a batch of %d failed; retrying in %.0f s", len(batch), RETRY_SECONDS)
                if stop is not None and stop.wait(RETRY_SECONDS):
                    return  # unacknowledged: the broker delivers it again
                if stop is None:
                    time.sleep(RETRY_SECONDS)
        self.stored += record(outcomes, "mqtt")
        for received in batch:
            # A message of an earlier connection is redelivered on this one: its old id means
            # nothing here (acking it could ack another message); the redelivery is `replayed`.
            if received.connection == self._connection:
                self._client.ack(received.message.mid, received.message.qos)

    def run(self, stop: threading.Event) -> None:
        """Batches until `stop` is set (then finishes the batch in hand)."""
        while not stop.is_set():
            batch = self.take()
            if batch:
                self.process(batch, stop)


def end_session(settings: Settings, timeout: float = 10.0) -> None:
    """Has the broker drop MQTT_CLIENT_ID's persistent session (its subscription and every
    message kept for it): for retiring an ingest client id (and tests on a shared broker)."""
    url = urlsplit(settings.mqtt_url)
    v5 = settings.mqtt_protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.mqtt_client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else True,
    )
    if url.username:
        client.username_pw_set(url.username, url.password)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    if v5:
        client.connect(url.hostname or "127.0.0.1", url.port or 1883, clean_start=True)
    else:
        client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise ConnectionError(f"no MQTT connection to {settings.mqtt_url} within {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    database = Database(settings.database_url, echo=settings.database_echo)
    # the chain once, for the signing domain (its id and AftermarketDevice's address)
    ingest = MqttIngest(settings, database, telemetry_verifier(settings, connect(settings)))
    if settings.ingest_metrics_port:
        start_http_server(settings.ingest_metrics_port)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ingest.start()
    try:
        ingest.run(stop)
    finally:
        ingest.close()
        database.dispose()


if __name__ == "__main__":
    main()
