"""Gateway fixtures: an app on a migrated database, HTTP clients, SIWE sign-in."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient

from tests.support.anvil import ANVIL_KEYS
from tests.support.celery_worker import RedisServer
from workers.chain.deployment import ANVIL_CHAIN_ID
from workers.config import Settings, get_settings, use_settings
from workers.gateway.app import create_app

warnings.filterwarnings("ignore", module="abnf")


def gateway_settings(db_url: str, **changes: object) -> Settings:
    """The environment's settings on `db_url`; SIWE messages name anvil's chain id (these apps
    have no chain to read it from unless a test gives one and `siwe_chain_id=None`)."""
    update = {"database_url": db_url, "siwe_chain_id": ANVIL_CHAIN_ID, **changes}
    settings = get_settings().model_copy(update=update)
    use_settings(settings)
    return settings


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Redis for the signal feed (the test's writers and its gateway share it)."""
    server = RedisServer(tmp_path_factory.mktemp("feed"))
    yield server.url
    server.stop()


@pytest.fixture
def client(sqlite_db: str) -> Iterator[TestClient]:
    app = create_app(gateway_settings(sqlite_db))
    with TestClient(app, base_url="http://localhost:8000") as test_client:
        yield test_client


def sign(message: str, key: str) -> str:
    return "0x" + Account.sign_message(encode_defunct(text=message), key).signature.hex().removeprefix("0x")


def sign_in(client: TestClient, key: str = ANVIL_KEYS[5]) -> str:
    address = Account.from_key(key).address
    nonce = client.post("/auth/nonce", json={"address": address})
    assert nonce.status_code == 200, nonce.text
    message = nonce.json()["message"]
    verified = client.post("/auth/verify", json={"message": message, "signature": sign(message, key)})
    assert verified.status_code == 200, verified.text
    return verified.json()["token"]


class LiveServer:
    """The app served by uvicorn on a real loopback socket, in a thread."""

    def __init__(self, app: object) -> None:
        import threading  # noqa: PLC0415

        import uvicorn  # noqa: PLC0415

        from devkit.devnet import free_port  # noqa: PLC0415

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time  # noqa: PLC0415

        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
