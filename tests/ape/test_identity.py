"""The vehicle identity story from Python, through ape's anvil and the project's deployment:
an oracle signs a mint attestation and the owner signs a key grant with eth-account typed
data (workers.eip712); a relayer submits both; the grantee holds exactly what was signed.
Also: a device key signs a pairing, and transfers end it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from devkit.console import build_namespace
from devkit.deployment import ANVIL_DEPLOYER_KEY, Deployer
from tests.support.anvil import ANVIL_KEYS
from workers import eip712
from workers.chain.artifacts import load_artifact
from workers.chain.deployment import Manifest
from workers.protocol import NO_END
from workers.protocol.permissions import ALL, DELEGABLE, DRIVE, LOCATION, LOCK, TELEMETRY

VIN = "5YJ3E1EA7KF317000"
TERMS = keccak(b"fleet app terms v3")
ONE_HOUR = 3600


def _account(label: str) -> LocalAccount:
    """A key made here, holding no ETH: signing costs nothing, only the relayer pays gas."""
    return Account.from_key(keccak(label.encode()))


@pytest.fixture
def w3(chain) -> Web3:
    return chain.provider.web3


@pytest.fixture
def vehicles(manifest, w3) -> Contract:
    m: Manifest = manifest[0]
    return w3.eth.contract(address=m.address("VehicleId"), abi=load_artifact("VehicleId").abi)


@pytest.fixture
def devices(manifest, w3) -> Contract:
    m: Manifest = manifest[0]
    return w3.eth.contract(address=m.address("AftermarketDevice"), abi=load_artifact("AftermarketDevice").abi)


def send(w3: Web3, key: str, contract: Contract, fn: str, *args: Any) -> Any:
    return Deployer(w3, Account.from_key(key)).call(contract, fn, *args)


def now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


def expect_error(call: Any, sender: str, error_signature: str) -> None:
    """`call` (a prepared contract function) reverts with the named custom error."""
    with pytest.raises(ContractCustomError) as info:
        call.call({"from": sender})
    assert str(info.value.data).startswith(selector(error_signature)), info.value.data


@pytest.fixture
def oracle() -> LocalAccount:
    return _account("oem oracle")


@pytest.fixture
def connection_id(w3, vehicles, oracle) -> int:
    receipt = send(w3, ANVIL_DEPLOYER_KEY, vehicles, "addConnection", "Tesla", oracle.address)
    (event,) = vehicles.events.ConnectionSet().process_receipt(receipt, errors=DISCARD)
    return int(event["args"]["connectionId"])


def attest(
    w3: Web3, vehicles: Contract, oracle: LocalAccount, *, to: str, connection: int, vin: str
) -> tuple:
    """What the workers' OEM callback answers: the oracle's MintAttestation for `to`."""
    deadline = now(w3) + ONE_HOUR
    doc = eip712.mint_attestation(
        eip712.domain(eip712.VEHICLE_DOMAIN, w3.eth.chain_id, vehicles.address),
        to=to,
        connection_id=connection,
        vin_hash=eip712.vin_hash(vin),
        nonce=(nonce := eip712.free_nonce(vehicles, oracle.address)),
        deadline=deadline,
    )
    return to, connection, eip712.vin_hash(vin), nonce, deadline, eip712.sign(doc, oracle.key)


def signed_grant(
    w3: Web3,
    vehicles: Contract,
    signer: LocalAccount,
    *,
    vehicle_id: int,
    grantee: str,
    bits: int,
    expires_at: int,
) -> tuple:
    deadline = now(w3) + ONE_HOUR
    doc = eip712.grant(
        eip712.domain(eip712.VEHICLE_DOMAIN, w3.eth.chain_id, vehicles.address),
        vehicle_id=vehicle_id,
        generation=vehicles.functions.generation(vehicle_id).call(),
        grantee=grantee,
        permissions=bits,
        expires_at=expires_at,
        terms_hash=TERMS,
        nonce=(nonce := eip712.free_nonce(vehicles, signer.address)),
        deadline=deadline,
    )
    signature = eip712.sign(doc, signer.key)
    return vehicle_id, grantee, bits, expires_at, TERMS, signer.address, nonce, deadline, signature


def test_domain_separator_matches_python(w3, vehicles, devices):
    for contract, name in ((vehicles, eip712.VEHICLE_DOMAIN), (devices, eip712.DEVICE_DOMAIN)):
        doc = eip712.pair(
            eip712.domain(name, w3.eth.chain_id, contract.address),
            vehicle_id=1,
            device_id=1,
            nonce=0,
            deadline=0,
        )
        assert contract.functions.DOMAIN_SEPARATOR().call() == eip712.encode(doc).header


def test_relayer_submits_oracle_attestation_and_owner_grant(w3, vehicles, oracle, connection_id):
    owner, grantee = _account("owner"), _account("fleet app")
    relayer_key = ANVIL_KEYS[1]
    relayer = Account.from_key(relayer_key).address

    mint_args = attest(w3, vehicles, oracle, to=owner.address, connection=connection_id, vin=VIN)
    receipt = send(w3, relayer_key, vehicles, "mintWithAttestation", *mint_args)
    (minted,) = vehicles.events.VehicleMinted().process_receipt(receipt, errors=DISCARD)
    vehicle_id = int(minted["args"]["vehicleId"])
    assert minted["args"]["owner"] == owner.address
    assert minted["args"]["vinHash"] == eip712.vin_hash(VIN)
    assert vehicles.functions.ownerOf(vehicle_id).call() == owner.address
    assert vehicles.functions.vehicleOfVin(eip712.vin_hash(VIN)).call() == vehicle_id
    assert vehicles.functions.isNonceUsed(oracle.address, mint_args[3]).call()
    assert w3.eth.get_balance(owner.address) == 0  # the owner never paid gas

    bits, expires_at = TELEMETRY | LOCATION, now(w3) + 30 * 24 * ONE_HOUR
    grant_args = signed_grant(
        w3, vehicles, owner, vehicle_id=vehicle_id, grantee=grantee.address, bits=bits, expires_at=expires_at
    )
    receipt = send(w3, relayer_key, vehicles, "grantBySig", *grant_args)
    (granted,) = vehicles.events.KeyGranted().process_receipt(receipt, errors=DISCARD)
    assert granted["args"]["grantee"] == grantee.address
    assert granted["args"]["permissions"] == bits
    assert granted["args"]["expiresAt"] == expires_at
    assert granted["args"]["termsHash"] == TERMS
    assert granted["args"]["generation"] == vehicles.functions.generation(vehicle_id).call() == 1

    # The grantee's rights are exactly what was signed; nobody else gained anything.
    assert vehicles.functions.grantOf(vehicle_id, grantee.address).call() == [bits, expires_at, TERMS]
    assert vehicles.functions.permissionsOf(vehicle_id, grantee.address).call() == bits
    assert vehicles.functions.hasPermissions(vehicle_id, grantee.address, TELEMETRY).call()
    assert not vehicles.functions.hasPermissions(vehicle_id, grantee.address, LOCK).call()
    assert vehicles.functions.permissionsOf(vehicle_id, relayer).call() == 0
    assert vehicles.functions.permissionsOf(vehicle_id, owner.address).call() == ALL
    assert vehicles.functions.isNonceUsed(owner.address, grant_args[6]).call()
    assert granted["args"]["granter"] == owner.address

    # Replays are refused: the nonces were consumed.
    used = "NonceAlreadyUsed(address,uint256)"
    expect_error(vehicles.functions.grantBySig(*grant_args), relayer, used)
    expect_error(vehicles.functions.mintWithAttestation(*mint_args), relayer, used)


def test_tampered_grant_and_unauthorised_signer_are_refused(w3, vehicles, oracle, connection_id):
    owner, grantee, stranger = _account("owner 2"), _account("grantee 2"), _account("stranger")
    relayer = Account.from_key(ANVIL_KEYS[1]).address
    send(
        w3,
        ANVIL_KEYS[1],
        vehicles,
        "mintWithAttestation",
        *attest(w3, vehicles, oracle, to=owner.address, connection=connection_id, vin="1HGCM82633A004352"),
    )
    vehicle_id = vehicles.functions.vehicleOfVin(eip712.vin_hash("1HGCM82633A004352")).call()

    args = list(
        signed_grant(
            w3,
            vehicles,
            owner,
            vehicle_id=vehicle_id,
            grantee=grantee.address,
            bits=TELEMETRY,
            expires_at=NO_END,
        )
    )
    args[2] = DELEGABLE  # more bits than were signed
    expect_error(vehicles.functions.grantBySig(*args), relayer, "InvalidSignature(address)")

    by_stranger = signed_grant(
        w3,
        vehicles,
        stranger,
        vehicle_id=vehicle_id,
        grantee=grantee.address,
        bits=TELEMETRY,
        expires_at=NO_END,
    )
    expect_error(vehicles.functions.grantBySig(*by_stranger), relayer, "NotKeyManager(uint256,address)")

    other_vin = attest(
        w3, vehicles, oracle, to=owner.address, connection=connection_id, vin="1HGCM82633A004352"
    )
    expect_error(
        vehicles.functions.mintWithAttestation(*other_vin), relayer, "VinAlreadyMinted(bytes32,uint256)"
    )


def test_token_uri_is_json_with_connection_and_generation(w3, vehicles, oracle, connection_id):
    owner = _account("owner 3")
    send(
        w3,
        ANVIL_KEYS[1],
        vehicles,
        "mintWithAttestation",
        *attest(w3, vehicles, oracle, to=owner.address, connection=connection_id, vin="WBA3A5C51CF256651"),
    )
    vehicle_id = vehicles.functions.vehicleOfVin(eip712.vin_hash("WBA3A5C51CF256651")).call()
    uri = vehicles.functions.tokenURI(vehicle_id).call()
    prefix = "data:application/json;base64,"
    assert uri.startswith(prefix)
    metadata = json.loads(base64.b64decode(uri[len(prefix) :]))
    assert metadata["name"] == f"DIMO Vehicle #{vehicle_id}"
    assert metadata["connection"] == "Tesla"
    assert metadata["generation"] == 1
    assert metadata["vinHash"] == "0x" + eip712.vin_hash("WBA3A5C51CF256651").hex()
    assert {"trait_type": "Connection", "value": "Tesla"} in metadata["attributes"]


def test_device_key_signs_pairing_and_transfer_ends_it(w3, vehicles, devices, oracle, connection_id):
    owner_key, device_key = ANVIL_KEYS[2], _account("device key")
    owner = Account.from_key(owner_key).address
    send(
        w3,
        ANVIL_KEYS[1],
        vehicles,
        "mintWithAttestation",
        *attest(w3, vehicles, oracle, to=owner, connection=connection_id, vin="JH4KA8260MC000000"),
    )
    vehicle_id = vehicles.functions.vehicleOfVin(eip712.vin_hash("JH4KA8260MC000000")).call()

    send(
        w3, ANVIL_DEPLOYER_KEY, devices, "setManufacturer", Account.from_key(ANVIL_DEPLOYER_KEY).address, True
    )
    receipt = send(w3, ANVIL_DEPLOYER_KEY, devices, "mintDevice", owner, device_key.address, keccak(b"SN-42"))
    (minted,) = devices.events.DeviceMinted().process_receipt(receipt, errors=DISCARD)
    device_id = int(minted["args"]["deviceId"])
    assert devices.functions.deviceSigner(device_id).call() == device_key.address

    deadline = now(w3) + ONE_HOUR
    doc = eip712.pair(
        eip712.domain(eip712.DEVICE_DOMAIN, w3.eth.chain_id, devices.address),
        vehicle_id=vehicle_id,
        device_id=device_id,
        nonce=(nonce := eip712.free_nonce(devices, device_key.address)),
        deadline=deadline,
    )
    send(
        w3,
        owner_key,
        devices,
        "pair",
        vehicle_id,
        device_id,
        nonce,
        deadline,
        eip712.sign(doc, device_key.key),
    )
    assert devices.functions.deviceOf(vehicle_id).call() == device_id
    assert devices.functions.vehicleOfDevice(device_id).call() == vehicle_id

    # The driver of a rental (ERC-4907) may drive; a sale voids the driver and the pairing.
    driver = _account("driver").address
    send(w3, owner_key, vehicles, "setUser", vehicle_id, driver, now(w3) + ONE_HOUR)
    assert vehicles.functions.hasPermissions(vehicle_id, driver, DRIVE).call()
    buyer = Account.from_key(ANVIL_KEYS[3]).address
    send(w3, owner_key, vehicles, "transferFrom", owner, buyer, vehicle_id)
    assert vehicles.functions.generation(vehicle_id).call() == 2
    assert vehicles.functions.permissionsOf(vehicle_id, driver).call() == 0
    assert devices.functions.deviceOf(vehicle_id).call() == 0
    assert devices.functions.vehicleOfDevice(device_id).call() == 0


def test_console_has_vehicles_devices_and_signing_helpers(manifest, chain, w3, oracle):
    m, _ = manifest
    ns = build_namespace(w3, m)
    vehicles, devices, send_ = ns["vehicles"], ns["devices"], ns["send"]
    assert vehicles.address == m.address("VehicleId")
    assert devices.address == m.address("AftermarketDevice")
    assert ns["vehicle_domain"]["verifyingContract"] == vehicles.address
    assert ns["device_domain"]["verifyingContract"] == devices.address

    # One line each for governance and minting from the console (the deployer is minter on a devnet).
    send_(vehicles.functions.addConnection("Ford", oracle.address))
    connection = vehicles.functions.connectionCount().call()
    owner = _account("console owner")
    send_(vehicles.functions.mint(owner.address, connection, ns["vin_hash"]("1FTFW1ET5DFC10312")))
    vehicle_id = vehicles.functions.vehicleOfVin(ns["vin_hash"]("1FTFW1ET5DFC10312")).call()
    perms = ns["perms"]
    doc = ns["eip712"].grant(
        ns["vehicle_domain"],
        vehicle_id=vehicle_id,
        generation=vehicles.functions.generation(vehicle_id).call(),
        grantee=oracle.address,
        permissions=perms.LOCK | perms.UNLOCK,
        expires_at=NO_END,
        terms_hash=bytes(32),
        nonce=0,
        deadline=now(w3) + ONE_HOUR,
    )
    signature = ns["eip712"].sign(doc, owner.key)
    msg = doc["message"]
    send_(
        vehicles.functions.grantBySig(
            vehicle_id,
            oracle.address,
            msg["permissions"],
            NO_END,
            bytes(32),
            owner.address,
            msg["nonce"],
            msg["deadline"],
            signature,
        )
    )
    assert vehicles.functions.permissionsOf(vehicle_id, oracle.address).call() == perms.LOCK | perms.UNLOCK
