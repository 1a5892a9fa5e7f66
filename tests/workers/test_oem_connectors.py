"""The connectors against the OEM simulator (a real HTTP server), through the published
clients production uses (`smartcar`, `tesla-fleet-api`): OAuth code exchange and refresh,
normalised VSS signals, commands, 429 backoff, outages, malformed payloads, pacing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.anvil import free_port
from tests.support.simulator import SimulatorProcess
from workers.config import get_settings
from workers.oem import pkce
from workers.oem.connectors import (
    Command,
    Connector,
    SmartcarConnector,
    TeslaConnector,
    callback_uri,
    connector_for,
)
from workers.oem.errors import (
    InvalidGrantError,
    MalformedPayloadError,
    NotCapableError,
    RateLimitedError,
    ReauthorizationRequiredError,
    UnavailableError,
)
from workers.oem.ratelimit import TokenBucket
from workers.oem.retry import RetryPolicy
from workers.oem.tokens import MemoryTokens
from workers.signals import catalogue as vss
from workers.signals.catalogue import SignalClass

REDIRECT = "http://127.0.0.1:9/v1/oem/callback"
FAST = RetryPolicy(max_attempts=4, backoff_base=0.05, backoff_max=0.2, retry_after_max=5)


@pytest.fixture(autouse=True)
def _fresh_world(sim: SimulatorProcess) -> None:
    sim.reset()


def make(
    sim: SimulatorProcess, kind: str, policy: RetryPolicy = FAST, limiter: TokenBucket | None = None
) -> Connector:
    smartcar_conn, tesla_conn = sim.connections()
    conn, cls = (smartcar_conn, SmartcarConnector) if kind == "smartcar" else (tesla_conn, TeslaConnector)
    return cls(conn, REDIRECT, policy=policy, limiter=limiter or TokenBucket(1000, 1000))


def vehicle_of(sim: SimulatorProcess, oem: str, powertrain: str = "BEV") -> dict:
    return next(v for v in sim.vehicles(oem) if v["powertrain"] == powertrain)


def link(sim: SimulatorProcess, connector: Connector, vin: str) -> MemoryTokens:
    """What onboarding does: the owner consents, the code becomes tokens."""
    return MemoryTokens(connector.exchange_code(sim.consent(vin, REDIRECT, "s")))


def by_name(signals: list) -> dict:
    return {s.name: s for s in signals}


def test_smartcar_signals_are_vss_normalised_with_units_and_source(sim: SimulatorProcess):
    car = vehicle_of(sim, "smartcar")
    connector = make(sim, "smartcar")
    tokens = link(sim, connector, car["vin"])
    found = connector.read_vehicle(tokens)
    assert (found.vin, found.external_id, found.make) == (car["vin"], car["id"], car["make"])

    signals = by_name(connector.read_signals(tokens, found.external_id))
    truth = sim.vehicle(car["vin"])["state"]
    assert signals[vss.TRAVELED_DISTANCE].unit == "km"
    assert signals[vss.TRAVELED_DISTANCE].value == pytest.approx(truth["odometer_km"], abs=0.5)
    assert signals[vss.SOC].unit == "percent"
    assert signals[vss.SOC].value == pytest.approx(truth["soc_percent"], abs=0.1)
    assert signals[vss.SOH].value == pytest.approx(truth["capacity_kwh"] / 131.0 * 100, abs=0.1)
    assert signals[vss.BATTERY_RANGE].unit == "m"
    assert signals[vss.BATTERY_RANGE].value == pytest.approx(truth["range_km"] * 1000, rel=1e-3)
    assert signals[vss.LATITUDE].value == pytest.approx(truth["latitude"], abs=1e-3)
    assert signals[vss.IS_LOCKED].value is True
    assert signals[vss.TIRE_PRESSURE[("Row1", "Left")]].unit == "kPa"
    assert vss.FUEL_LEVEL not in signals  # a BEV: the 501 for /fuel is skipped, not an error
    assert {s.source for s in signals.values()} == {"oem:1"}
    assert signals[vss.LATITUDE].signal_class is SignalClass.LOCATION
    assert signals[vss.LONGITUDE].signal_class is SignalClass.LOCATION
    assert signals[vss.SOC].signal_class is SignalClass.TELEMETRY
    stats = sim.stats()
    assert stats["requests"]["smartcar"] == 4  # vehicles, vin, attributes, one batch


def test_smartcar_combustion_car_reports_fuel_not_battery(sim: SimulatorProcess):
    car = vehicle_of(sim, "smartcar", "ICE")
    connector = make(sim, "smartcar")
    tokens = link(sim, connector, car["vin"])
    signals = by_name(connector.read_signals(tokens, car["id"]))
    truth = sim.vehicle(car["vin"])["state"]
    assert signals[vss.FUEL_LEVEL].value == pytest.approx(truth["fuel_percent"], abs=0.05)
    assert signals[vss.RANGE].value == signals[vss.FUEL_RANGE].value
    assert vss.SOC not in signals and vss.SOH not in signals


def test_tesla_sleeping_car_is_woken_then_read_in_metric(sim: SimulatorProcess):
    car = vehicle_of(sim, "tesla")
    connector = make(sim, "tesla")
    tokens = link(sim, connector, car["vin"])
    assert connector.read_vehicle(tokens).vin == car["vin"]
    assert sim.vehicle(car["vin"])["online"] is False

    since = time.time()
    signals = by_name(connector.read_signals(tokens, car["vin"]))
    paths = [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in sim.requests(since)]
    assert (
        paths[0] == ("vehicle_data", 408) and ("wake_up", 200) in paths and paths[-1] == ("vehicle_data", 200)
    )
    truth = sim.vehicle(car["vin"])["state"]
    assert signals[vss.TRAVELED_DISTANCE].value == pytest.approx(truth["odometer_km"], abs=0.5)
    assert signals[vss.SOC].value == pytest.approx(truth["soc_percent"], abs=1.0)
    assert signals[vss.SPEED].unit == "km/h"
    assert signals[vss.LATITUDE].value == pytest.approx(truth["latitude"], abs=1e-3)
    assert signals[vss.TIRE_PRESSURE[("Row2", "Right")]].value == pytest.approx(truth["tire_kpa"][3], abs=0.5)
    assert {s.source for s in signals.values()} == {"oem:2"}


def test_commands_change_the_simulated_lock_state(sim: SimulatorProcess):
    smartcar_car = vehicle_of(sim, "smartcar")
    smartcar = make(sim, "smartcar")
    tokens = link(sim, smartcar, smartcar_car["vin"])
    smartcar.send_command(tokens, smartcar_car["id"], Command.UNLOCK)
    assert sim.vehicle(smartcar_car["vin"])["locked"] is False
    smartcar.send_command(tokens, smartcar_car["id"], Command.LOCK)
    assert sim.vehicle(smartcar_car["vin"])["locked"] is True
    with pytest.raises(NotCapableError):
        smartcar.send_command(tokens, smartcar_car["id"], Command.START)

    tesla_car = vehicle_of(sim, "tesla")
    tesla = make(sim, "tesla")
    tesla_tokens = link(sim, tesla, tesla_car["vin"])
    tesla.send_command(tesla_tokens, tesla_car["vin"], Command.UNLOCK)  # asleep: woken first
    tesla.send_command(tesla_tokens, tesla_car["vin"], Command.START)
    state = sim.vehicle(tesla_car["vin"])
    assert state["locked"] is False and state["remote_started"] is True
    assert [c["command"] for c in state["commands"]] == ["door_unlock", "remote_start_drive"]


def test_a_token_for_one_vehicle_reads_no_other(sim: SimulatorProcess):
    mine, other = sim.vehicles("smartcar")[:2]
    connector = make(sim, "smartcar")
    tokens = link(sim, connector, mine["vin"])
    with pytest.raises(Exception) as refused:
        connector.read_signals(tokens, other["id"])
    assert getattr(refused.value, "reason", "") == "oem_request_refused"


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_server_side_expiry_is_refreshed_once_and_stored(sim: SimulatorProcess, kind: str):
    car = vehicle_of(sim, kind)
    connector = make(sim, kind)
    saved = []
    tokens = MemoryTokens(connector.exchange_code(sim.consent(car["vin"], REDIRECT)), saved.append)
    first = tokens.current()
    assert sim.expire_tokens(car["vin"]) == 1

    external = car["id"] if kind == "smartcar" else car["vin"]
    assert connector.read_signals(tokens, external)
    assert len(saved) == 1 and saved[0] == tokens.current()
    assert tokens.current().access_token != first.access_token
    assert tokens.current().refresh_token != first.refresh_token  # rotated
    assert sim.stats()["refreshes"] == 1


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_tokens_are_refreshed_ahead_of_expiry(sim: SimulatorProcess, kind: str):
    sim.configure(access_token_ttl=30)
    car = vehicle_of(sim, kind)
    connector = make(sim, kind, RetryPolicy(refresh_skew=60))
    tokens = link(sim, connector, car["vin"])
    since = time.time()
    connector.read_vehicle(tokens)
    assert sim.stats()["refreshes"] == 1
    assert all(r["status"] != 401 for r in sim.requests(since))


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_a_dead_refresh_token_asks_for_a_new_consent(sim: SimulatorProcess, kind: str):
    car = vehicle_of(sim, kind)
    connector = make(sim, kind)
    tokens = link(sim, connector, car["vin"])
    connector.refresh(tokens.current().refresh_token)  # someone else rotated it: ours is dead
    sim.expire_tokens(car["vin"])
    with pytest.raises(ReauthorizationRequiredError):
        connector.read_vehicle(tokens)


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_unknown_and_reused_codes_are_refused(sim: SimulatorProcess, kind: str):
    connector = make(sim, kind)
    with pytest.raises(InvalidGrantError):
        connector.exchange_code("not-a-code")
    code = sim.consent(vehicle_of(sim, kind)["vin"], REDIRECT)
    connector.exchange_code(code)
    with pytest.raises(InvalidGrantError):
        connector.exchange_code(code)


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_429_is_retried_after_retry_after(sim: SimulatorProcess, kind: str):
    car = vehicle_of(sim, kind)
    connector = make(sim, kind)
    tokens = link(sim, connector, car["vin"])
    if kind == "tesla":
        connector.read_signals(tokens, car["vin"])  # wake it up first
    sim.fault("rate_limit", kind, count=2, retry_after=1)
    since = time.time()
    assert connector.read_signals(tokens, car["id"] if kind == "smartcar" else car["vin"])
    log = [r for r in sim.requests(since) if r["api"] == kind]
    assert [r["status"] for r in log] == [429, 429, 200]
    assert log[1]["at"] - log[0]["at"] >= 0.95 and log[2]["at"] - log[1]["at"] >= 0.95


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_429_beyond_the_budget_reaches_the_caller_with_retry_after(sim: SimulatorProcess, kind: str):
    car = vehicle_of(sim, kind)
    connector = make(sim, kind, RetryPolicy(max_attempts=2, retry_after_max=5))
    tokens = link(sim, connector, car["vin"])
    sim.fault("rate_limit", kind, count=5, retry_after=1)
    with pytest.raises(RateLimitedError) as raised:
        connector.read_vehicle(tokens)
    assert raised.value.retry_after == 1
    # A Retry-After beyond what the caller accepts to sleep: one request, then the caller.
    sim.clear_faults()
    sim.fault("rate_limit", kind, count=1, retry_after=120)
    since = time.time()
    with pytest.raises(RateLimitedError) as raised:
        connector.read_vehicle(tokens)
    assert raised.value.retry_after == 120
    assert len([r for r in sim.requests(since) if r["api"] == kind]) == 1


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
@pytest.mark.parametrize("status", [500, 503])
def test_outages_are_retried_with_backoff(sim: SimulatorProcess, kind: str, status: int):
    car = vehicle_of(sim, kind)
    connector = make(sim, kind)
    tokens = link(sim, connector, car["vin"])
    sim.fault("outage", kind, count=2, status=status)
    assert connector.read_vehicle(tokens).vin == car["vin"]
    assert sim.stats()["outages"] == 2


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_a_long_outage_gives_unavailable_after_the_budget(sim: SimulatorProcess, kind: str):
    car = vehicle_of(sim, kind)
    connector = make(sim, kind, RetryPolicy(max_attempts=3, backoff_base=0.01))
    tokens = link(sim, connector, car["vin"])
    sim.fault("outage", kind, seconds=60)
    since = time.time()
    with pytest.raises(UnavailableError):
        connector.read_vehicle(tokens)
    assert len([r for r in sim.requests(since) if r["api"] == kind]) == 3


def test_the_oauth_server_outage_is_retried_too(sim: SimulatorProcess):
    sim.fault("outage", "oauth", count=2)
    connector = make(sim, "tesla")
    assert link(sim, connector, vehicle_of(sim, "tesla")["vin"]).current().access_token


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_an_unreachable_oem_is_unavailable(sim: SimulatorProcess, kind: str):
    good = make(sim, kind)
    tokens = link(sim, good, vehicle_of(sim, kind)["vin"])
    dead = f"http://127.0.0.1:{free_port()}"
    conn = good.connection.model_copy(update={"api_url": dead})
    connector = type(good)(conn, REDIRECT, policy=RetryPolicy(max_attempts=2, backoff_base=0.01))
    with pytest.raises(UnavailableError):
        connector.read_vehicle(tokens)


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
@pytest.mark.parametrize("mode", ["truncated", "missing_fields", "wrong_types"])
def test_malformed_payloads_are_refused_whole(sim: SimulatorProcess, kind: str, mode: str):
    car = vehicle_of(sim, kind)
    connector = make(sim, kind)
    tokens = link(sim, connector, car["vin"])
    external = car["id"] if kind == "smartcar" else car["vin"]
    if kind == "tesla":
        connector.read_signals(tokens, external)  # awake, so the fault hits vehicle_data
    sim.fault("malformed", kind, count=1, mode=mode)
    with pytest.raises(MalformedPayloadError):
        connector.read_signals(tokens, external)
    assert sim.stats()["malformed"] == 1
    assert connector.read_signals(tokens, external)  # the next answer is fine again


def test_client_side_pacing_keeps_under_the_oem_limit(sim: SimulatorProcess):
    car = vehicle_of(sim, "smartcar")
    sim.configure(rate_limit=2, rate_window=1.0, rate_retry_after=1)
    paced = make(sim, "smartcar", limiter=TokenBucket(rate=1.8, burst=1))
    tokens = link(sim, paced, car["vin"])
    started = time.monotonic()
    for _ in range(6):
        paced.read_signals(tokens, car["id"])
    assert time.monotonic() - started >= 5 / 1.8 - 0.1
    assert sim.stats()["rate_limited"] == 0

    unpaced = make(sim, "smartcar", RetryPolicy(max_attempts=6, retry_after_max=5))
    for _ in range(6):
        unpaced.read_signals(tokens, car["id"])
    assert sim.stats()["rate_limited"] > 0  # the OEM had to push back


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_authorize_url_leads_to_the_consent_page_with_state(sim: SimulatorProcess, kind: str):
    connector = make(sim, kind)
    url = connector.authorize_url("state-123")
    page = httpx.get(url)
    assert page.status_code == 200 and 'action="/oauth/allow"' in page.text
    assert 'value="state-123"' in page.text and REDIRECT in page.text
    vins = {v["vin"] for v in sim.vehicles(kind)}
    assert all(vin in page.text for vin in vins)
    allowed = httpx.post(
        f"{sim.url}/oauth/allow",
        data={
            "vin": sorted(vins)[0],
            "redirect_uri": REDIRECT,
            "state": "state-123",
            "client_id": connector.client_id,
        },
    )
    assert allowed.status_code == 302
    location = httpx.URL(allowed.headers["location"])
    assert location.params["state"] == "state-123"
    assert connector.exchange_code(location.params["code"]).access_token


@pytest.mark.parametrize("kind", ["smartcar", "tesla"])
def test_a_pkce_consent_is_exchanged_with_its_verifier(sim: SimulatorProcess, kind: str):
    connector = make(sim, kind)
    verifier = pkce.new_verifier()
    url = httpx.URL(connector.authorize_url("state-pkce", pkce.challenge(verifier)))
    assert (url.params["code_challenge"], url.params["code_challenge_method"]) == (
        pkce.challenge(verifier),
        "S256",
    )
    assert url.params["state"] == "state-pkce" and url.params["redirect_uri"] == REDIRECT
    page = httpx.get(str(url))
    assert page.status_code == 200 and f'value="{pkce.challenge(verifier)}"' in page.text
    vin = vehicle_of(sim, kind)["vin"]
    code = sim.consent(vin, REDIRECT, "state-pkce", pkce.challenge(verifier))
    with pytest.raises(InvalidGrantError):  # the automaker wants the verifier
        connector.exchange_code(code)
    code = sim.consent(vin, REDIRECT, "state-pkce", pkce.challenge(verifier))
    tokens = MemoryTokens(connector.exchange_code(code, verifier))
    assert connector.read_vehicle(tokens).vin == vin


def test_pkce_follows_the_api_familys_documentation_unless_the_connection_says(sim: SimulatorProcess):
    smartcar_conn, tesla_conn = sim.connections()
    assert (make(sim, "smartcar").pkce, make(sim, "tesla").pkce) == (True, True)  # the simulator's
    documented = smartcar_conn.model_copy(update={"pkce": None})
    assert SmartcarConnector(documented, REDIRECT).pkce is False
    assert TeslaConnector(tesla_conn.model_copy(update={"pkce": None}), REDIRECT).pkce is True
    assert TeslaConnector(tesla_conn.model_copy(update={"pkce": False}), REDIRECT).pkce is False
    assert pkce.challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B
    )


def test_connector_for_builds_from_settings(sim: SimulatorProcess, tmp_path: Path):
    settings = sim.settings(get_settings(), oem_callback_base_url="https://gw.example")
    smartcar = connector_for(1, settings)
    tesla = connector_for(2, settings)
    assert isinstance(smartcar, SmartcarConnector) and isinstance(tesla, TeslaConnector)
    assert smartcar.redirect_uri == callback_uri(settings, 1) == "https://gw.example/v1/oem/1/callback"
    assert connector_for(1, settings).limiter is smartcar.limiter  # one bucket per connection
    car = vehicle_of(sim, "tesla")
    code = sim.consent(car["vin"], tesla.redirect_uri)
    assert tesla.read_vehicle(MemoryTokens(tesla.exchange_code(code))).vin == car["vin"]
    with pytest.raises(KeyError):
        connector_for(99, settings)
