"""`python -m devkit.simulator --port N [--vehicles K] [--client ID:SECRET ...]`."""

from __future__ import annotations

import argparse

import uvicorn

from devkit.simulator.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_FLEET_SIZE, create_app
from devkit.simulator.state import Client


def _client(text: str) -> Client:
    client_id, sep, secret = text.partition(":")
    if not sep or not client_id or not secret:
        raise argparse.ArgumentTypeError("expected ID:SECRET")
    return Client(client_id, secret)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devkit.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--vehicles", type=int, default=DEFAULT_FLEET_SIZE, help="fleet size")
    parser.add_argument("--seed", default="dimo-sim", help="fleet seed (VINs, ids, traces)")
    parser.add_argument(
        "--client",
        type=_client,
        action="append",
        help=f"OAuth client ID:SECRET (repeatable; default {DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET})",
    )
    args = parser.parse_args(argv)
    app = create_app(args.vehicles, args.client, args.seed)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
