"""`python -m devkit.mqtt_broker --port N`: an MQTT broker in Python (amqtt) for the dev kit,
started by `make up`/`make demo` when no broker answers at MQTT_URL, so a device's telemetry
goes over MQTT with nothing installed. MQTT 3.1.1 only (the ingest speaks that to it:
MQTT_PROTOCOL=3.1.1).

Clients must give a user name (any; no password is checked): amqtt keeps QoS 1 messages for
an offline persistent session only when its client is not anonymous, and the ingest relies on
that across restarts. Production uses a real broker (Mosquitto, deploy/mosquitto.conf)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from amqtt.broker import Broker


def config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
    }


async def serve(host: str, port: int, stop: asyncio.Event | None = None) -> None:
    """Runs the broker until `stop` is set (forever without one)."""
    broker = Broker(config(host, port))
    await broker.start()
    logging.getLogger(__name__).info("MQTT broker listening on %s:%d", host, port)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("amqtt", "transitions"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
