"""The OEM cloud simulator as a server (`python -m devkit.simulator`): its fleet and
driving/battery traces, OAuth rules, token expiry on its clock, rate limits, faults, Tesla
sleep, units, and the `/_sim` controls DESIGN.md §4 names."""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from devkit.simulator.fleet import CYCLE_SECONDS, DRIVE_SECONDS, vin_check_digit
from tests.support.simulator import SimulatorProcess
from workers.config import SIMULATOR_CLIENT_ID, SIMULATOR_CLIENT_SECRET

REDIRECT = "http://127.0.0.1:9/callback"
KM_PER_MILE = 1.609344


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    node = SimulatorProcess(vehicles=16, log_dir=tmp_path_factory.mktemp("sim"))
    yield node
    node.stop()


@pytest.fixture(autouse=True)
def _reset(sim: SimulatorProcess) -> None:
    sim.reset()


def smartcar_token(sim: SimulatorProcess, vin: str, redirect: str = REDIRECT) -> dict:
    code = sim.consent(vin, redirect)
    answer = sim.http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
        auth=(SIMULATOR_CLIENT_ID, SIMULATOR_CLIENT_SECRET),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def tesla_token(sim: SimulatorProcess, vin: str) -> dict:
    code = sim.consent(vin, REDIRECT)
    form = {
        "grant_type": "authorization_code",
        "client_id": SIMULATOR_CLIENT_ID,
        "client_secret": SIMULATOR_CLIENT_SECRET,
        "code": code,
        "redirect_uri": REDIRECT,
    }
    answer = sim.http.post("/oauth2/v3/token", data=form)
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(token: dict) -> dict:
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_the_fleet_has_unique_valid_vins_and_the_designed_fields(sim):
    fleet = sim.vehicles()
    assert len(fleet) == 16
    assert {"id", "vin", "make", "model", "powertrain", "oem"} <= set(fleet[0])
    vins = [v["vin"] for v in fleet]
    assert len(set(vins)) == 16 and len({v["id"] for v in fleet}) == 16
    assert all(len(vin) == 17 and vin[8] == vin_check_digit(vin) for vin in vins)
    assert {v["oem"] for v in fleet} == {"smartcar", "tesla"}
    assert {v["powertrain"] for v in fleet} == {"BEV", "PHEV", "ICE"}


def test_traces_drive_charge_and_come_home_over_a_cycle(sim):
    car = next(v for v in sim.vehicles("smartcar") if v["powertrain"] == "BEV")
    states = []
    for _ in range(int(2 * CYCLE_SECONDS / 120)):
        states.append(sim.vehicle(car["vin"])["state"])
        sim.advance(120)
    odometers = [s["odometer_km"] for s in states]
    assert odometers == sorted(odometers) and odometers[-1] - odometers[0] > 5
    assert all(0 <= s["soc_percent"] <= 100 for s in states)
    driving = [s for s in states if s["driving"]]
    parked = [s for s in states if not s["driving"]]
    assert len(driving) >= DRIVE_SECONDS / 120 and parked
    assert sum(s["speed_kmh"] > 0 for s in driving) >= len(driving) - 1  # 0 only at a drive's start
    assert all(s["speed_kmh"] == 0 and s["plugged_in"] for s in parked)
    charging = [s for s in parked if s["charging"]]
    assert charging, "an EV charges after its drive"
    consecutive = list(itertools.pairwise(states))
    assert any(b["soc_percent"] > a["soc_percent"] for a, b in consecutive if b["charging"])
    assert any(b["soc_percent"] < a["soc_percent"] for a, b in consecutive if b["driving"] and a["driving"])
    homes = {(round(s["latitude"], 5), round(s["longitude"], 5)) for s in parked}
    assert len(homes) == 1  # parked cars are at home


def test_codes_are_single_use_and_bound_to_their_redirect_uri(sim):
    vin = sim.vehicles("smartcar")[0]["vin"]
    code = sim.consent(vin, REDIRECT)
    auth = (SIMULATOR_CLIENT_ID, SIMULATOR_CLIENT_SECRET)
    wrong = sim.http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://evil/cb"},
        auth=auth,
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = sim.consent(vin, REDIRECT)
    bad_client = sim.http.post(
        "/oauth/token", data={"grant_type": "authorization_code", "code": code}, auth=("x", "y")
    )
    assert bad_client.status_code == 401
    ok = sim.http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=auth,
    )
    assert ok.status_code == 200
    again = sim.http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=auth,
    )
    assert again.status_code == 400


def _exchange(sim: SimulatorProcess, oem: str, code: str, verifier: str | None) -> httpx.Response:
    """The authorization-code grant at `oem`'s token endpoint, with `verifier` when given."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        form["code_verifier"] = verifier
    if oem == "smartcar":
        return sim.http.post("/oauth/token", data=form, auth=(SIMULATOR_CLIENT_ID, SIMULATOR_CLIENT_SECRET))
    form |= {"client_id": SIMULATOR_CLIENT_ID, "client_secret": SIMULATOR_CLIENT_SECRET}
    return sim.http.post("/oauth2/v3/token", data=form)


@pytest.mark.parametrize("oem", ["smartcar", "tesla"])
def test_a_pkce_code_is_exchanged_only_with_its_verifier(sim, oem):
    """RFC 7636 S256, as the automakers' servers check it: the consent's challenge binds the
    code to one verifier; none, a wrong one, or a well-formed stranger is refused (and the
    code is spent by the attempt)."""
    vin = sim.vehicles(oem)[0]["vin"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    for wrong in (None, verifier[:-1] + ("A" if verifier[-1] != "A" else "B"), "short", challenge):
        code = sim.consent(vin, REDIRECT, "s", code_challenge=challenge)
        refused = _exchange(sim, oem, code, wrong)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", wrong
        assert _exchange(sim, oem, code, verifier).status_code == 400  # spent by the attempt
    code = sim.consent(vin, REDIRECT, "s", code_challenge=challenge)
    granted = _exchange(sim, oem, code, verifier)
    assert granted.status_code == 200, granted.text
    assert granted.json()["access_token"]
    plain = _exchange(sim, oem, sim.consent(vin, REDIRECT), None)  # a consent without PKCE
    assert plain.status_code == 200


def test_the_consent_page_carries_the_challenge_and_refuses_other_methods(sim):
    vin = sim.vehicles("tesla")[0]["vin"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"x" * 43).digest()).rstrip(b"=").decode()
    query = {"client_id": SIMULATOR_CLIENT_ID, "redirect_uri": REDIRECT, "state": "s"}
    page = httpx.get(
        f"{sim.url}/oauth2/v3/authorize",
        params={**query, "code_challenge": challenge, "code_challenge_method": "S256"},
    )
    assert page.status_code == 200 and f'value="{challenge}"' in page.text
    allowed = httpx.post(
        f"{sim.url}/oauth/allow",
        data={**query, "vin": vin, "code_challenge": challenge, "code_challenge_method": "S256"},
    )
    code = httpx.URL(allowed.headers["location"]).params["code"]
    assert _exchange(sim, "tesla", code, "x" * 43).status_code == 200
    for bad in ({"code_challenge": challenge, "code_challenge_method": "plain"}, {"code_challenge": "x"}):
        refused = httpx.get(f"{sim.url}/oauth2/v3/authorize", params={**query, **bad})
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    bad_consent = sim.http.post(
        "/_sim/consent",
        json={
            "vin": vin,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "plain",
        },
    )
    assert bad_consent.status_code == 400


def test_a_smartcar_token_reads_only_its_vehicle_and_only_smartcar_paths(sim):
    mine, other = sim.vehicles("smartcar")[:2]
    token = smartcar_token(sim, mine["vin"])
    assert sim.http.get(f"/v2.0/vehicles/{mine['id']}/vin", headers=bearer(token)).json() == {
        "vin": mine["vin"]
    }
    assert sim.http.get(f"/v2.0/vehicles/{other['id']}/vin", headers=bearer(token)).status_code == 403
    tesla = sim.vehicles("tesla")[0]
    assert sim.http.get(f"/api/1/vehicles/{tesla['vin']}", headers=bearer(token)).status_code == 401


def test_tokens_expire_on_the_simulator_clock_and_refresh_rotates(sim):
    car = sim.vehicles("smartcar")[0]
    token = smartcar_token(sim, car["vin"])
    path = f"/v2.0/vehicles/{car['id']}/odometer"
    assert sim.http.get(path, headers=bearer(token)).status_code == 200
    sim.advance(token["expires_in"] + 1)
    expired = sim.http.get(path, headers=bearer(token))
    assert expired.status_code == 401 and expired.json()["type"] == "AUTHENTICATION"
    auth = (SIMULATOR_CLIENT_ID, SIMULATOR_CLIENT_SECRET)
    fresh = sim.http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=auth,
    )
    assert fresh.status_code == 200
    assert sim.http.get(path, headers=bearer(fresh.json())).status_code == 200
    reused = sim.http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=auth,
    )
    assert reused.status_code == 400


def test_sustained_rate_limit_answers_429_with_retry_after(sim):
    car = sim.vehicles("smartcar")[0]
    token = smartcar_token(sim, car["vin"])
    sim.configure(rate_limit=3, rate_window=60, rate_retry_after=7)
    codes = [sim.http.get(f"/v2.0/vehicles/{car['id']}/odometer", headers=bearer(token)) for _ in range(5)]
    assert [c.status_code for c in codes] == [200, 200, 200, 429, 429]
    assert codes[3].headers["Retry-After"] == "7" and codes[3].json()["type"] == "RATE_LIMIT"
    sim.advance(61)
    assert sim.http.get(f"/v2.0/vehicles/{car['id']}/odometer", headers=bearer(token)).status_code == 200


def test_faults_by_count_by_time_and_by_api(sim):
    car = sim.vehicles("smartcar")[0]
    token = smartcar_token(sim, car["vin"])
    path = f"/v2.0/vehicles/{car['id']}/odometer"
    sim.fault("outage", "tesla", count=5)  # aimed elsewhere
    assert sim.http.get(path, headers=bearer(token)).status_code == 200
    sim.fault("outage", "smartcar", count=2, status=502)
    assert [sim.http.get(path, headers=bearer(token)).status_code for _ in range(3)] == [502, 502, 200]
    sim.fault("outage", "smartcar", seconds=100)
    assert sim.http.get(path, headers=bearer(token)).status_code == 503
    sim.advance(101)
    assert sim.http.get(path, headers=bearer(token)).status_code == 200
    sim.fault("malformed", "smartcar", count=1, mode="wrong_types")
    assert sim.http.get(path, headers=bearer(token)).json()["distance"].endswith("?")
    assert sim.stats()["outages"] == 3 and sim.stats()["malformed"] == 1


def test_tesla_cars_sleep_wake_and_fall_asleep_again(sim):
    car = sim.vehicles("tesla")[0]
    token = tesla_token(sim, car["vin"])
    path = f"/api/1/vehicles/{car['vin']}/vehicle_data"
    assert sim.http.get(path, headers=bearer(token)).status_code == 408
    sim.configure(wake_delay=0.2, stay_awake=300)
    woke = sim.http.post(f"/api/1/vehicles/{car['vin']}/wake_up", headers=bearer(token)).json()
    assert woke["response"]["state"] == "asleep"  # waking takes a moment
    time.sleep(0.3)
    data = sim.http.get(path, headers=bearer(token), params={"endpoints": "vehicle_state;drive_state"}).json()
    assert data["response"]["state"] == "online" and "latitude" not in data["response"]["drive_state"]
    located = sim.http.get(path, headers=bearer(token), params={"endpoints": "drive_state;location_data"})
    assert "latitude" in located.json()["response"]["drive_state"]
    sim.advance(301)
    assert sim.http.get(path, headers=bearer(token)).status_code == 408


def test_units_follow_sc_unit_system(sim):
    car = sim.vehicles("smartcar")[0]
    token = smartcar_token(sim, car["vin"])
    path = f"/v2.0/vehicles/{car['id']}/odometer"
    metric = sim.http.get(path, headers=bearer(token))
    imperial = sim.http.get(path, headers={**bearer(token), "sc-unit-system": "imperial"})
    assert imperial.headers["sc-unit-system"] == "imperial" and metric.headers["sc-unit-system"] == "metric"
    assert metric.headers["sc-data-age"] and metric.headers["sc-request-id"]
    assert imperial.json()["distance"] == pytest.approx(metric.json()["distance"] / KM_PER_MILE, abs=0.5)


def test_commands_change_locks_and_unknown_ones_are_refused(sim):
    car = sim.vehicles("smartcar")[0]
    token = smartcar_token(sim, car["vin"])
    path = f"/v2.0/vehicles/{car['id']}/security"
    assert sim.http.post(path, headers=bearer(token), json={"action": "UNLOCK"}).status_code == 200
    assert sim.http.get(path, headers=bearer(token)).json()["isLocked"] is False
    assert sim.http.post(path, headers=bearer(token), json={"action": "OPEN"}).status_code == 400
    tesla = sim.vehicles("tesla")[0]
    tesla_tok = tesla_token(sim, tesla["vin"])
    sim.configure(wake_delay=0)
    sim.http.post(f"/api/1/vehicles/{tesla['vin']}/wake_up", headers=bearer(tesla_tok))
    bad = sim.http.post(f"/api/1/vehicles/{tesla['vin']}/command/honk_forever", headers=bearer(tesla_tok))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_command"
    assert sim.vehicle(tesla["vin"])["commands"] == []


def test_the_consent_page_lists_the_oems_cars(sim):
    page = httpx.get(
        f"{sim.url}/oauth/authorize",
        params={"client_id": SIMULATOR_CLIENT_ID, "redirect_uri": REDIRECT, "state": "s"},
    )
    assert page.status_code == 200
    assert all(v["vin"] in page.text for v in sim.vehicles("smartcar"))
    assert not any(v["vin"] in page.text for v in sim.vehicles("tesla"))
    unknown = httpx.get(f"{sim.url}/oauth/authorize", params={"client_id": "nobody"})
    assert unknown.status_code == 400
