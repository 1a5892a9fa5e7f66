"""Settings: production refuses the public devnet secrets (docs/security.md SEC-05)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from workers.config import Settings

PRODUCTION_SECRETS = {
    "token_secret": SecretStr("a-real-secret-of-this-deployment"),
    "settler_key": SecretStr("0x" + "11" * 32),
    "oracle_key": SecretStr("0x" + "22" * 32),
    "oem_client_secret": SecretStr("client-secret-from-the-automaker"),
    "oem_token_keys": [SecretStr("q1bJSCZ3nX3Hq6v5bR5Tg0p8a9mLr2wKzYx4cD7eF0A=")],
}


def test_devnet_runs_on_the_defaults():
    assert Settings(environment="devnet").environment == "devnet"


def test_production_with_every_secret_set_is_accepted():
    settings = Settings(environment="production", **PRODUCTION_SECRETS)
    assert settings.token_secret.get_secret_value() == "a-real-secret-of-this-deployment"


@pytest.mark.parametrize("left_default", sorted(PRODUCTION_SECRETS))
def test_production_refuses_each_devnet_default(left_default):
    given = {k: v for k, v in PRODUCTION_SECRETS.items() if k != left_default}
    with pytest.raises(ValidationError, match=left_default.upper()):
        Settings(environment="production", **given)
