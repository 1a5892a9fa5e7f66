"""VehicleId and AftermarketDevice: vehicles (owner, generation), OEM connections, keys, the
ERC-4907 user, devices, manufacturers and pairings.

Both NFTs bump a generation on every mint, transfer and burn (in `_update`, so the ERC-721
Transfer comes first); keys, users, memberships and pairings record the generation they were
made in and are live only while it is current.
"""

from __future__ import annotations

from workers.indexer.decode import Event
from workers.indexer.handlers import on
from workers.indexer.store import Store
from workers.protocol import ZERO_ADDRESS


@on("VehicleId", "Transfer")
def vehicle_transfer(ev: Event, s: Store) -> None:
    vehicle_id, to = ev.args["tokenId"], ev.args["to"]
    row = s.get("vehicles", vehicle_id) or {
        "vehicle_id": vehicle_id,
        "generation": 0,
        "connection_id": None,
        "vin_hash": None,
        "minted_block": ev.block_number,
    }
    burned = to == ZERO_ADDRESS
    row.update(
        owner=None if burned else to,
        generation=row["generation"] + 1,
        tenure_started_at=ev.block_timestamp,
        burned=burned,
        block_number=ev.block_number,
    )
    s.put("vehicles", row)


@on("VehicleId", "VehicleMinted")
def vehicle_minted(ev: Event, s: Store) -> None:
    s.update(
        "vehicles",
        (ev.args["vehicleId"],),
        connection_id=ev.args["connectionId"],
        vin_hash=ev.args["vinHash"],
        minted_block=ev.block_number,
        block_number=ev.block_number,
    )


@on("VehicleId", "VehicleBurned")
def vehicle_burned(ev: Event, s: Store) -> None:
    s.update("vehicles", (ev.args["vehicleId"],), burned=True, owner=None, block_number=ev.block_number)


@on("VehicleId", "ConnectionSet")
def connection_set(ev: Event, s: Store) -> None:
    s.put(
        "connections",
        {
            "connection_id": ev.args["connectionId"],
            "name": ev.args["name"],
            "oracle": ev.args["oracle"],
            "active": ev.args["active"],
            "block_number": ev.block_number,
        },
    )


@on("VehicleId", "KeyGranted")
def key_granted(ev: Event, s: Store) -> None:
    vehicle_id, granter = ev.args["vehicleId"], ev.args["granter"]
    vehicle = s.get("vehicles", vehicle_id)
    by_owner = vehicle is not None and (vehicle["owner"] or "").lower() == granter.lower()
    epoch = None if by_owner else s.get("key_manager_epochs", vehicle_id, granter)
    s.put(
        "vehicle_keys",
        {
            "vehicle_id": vehicle_id,
            "grantee": ev.args["grantee"],
            "permissions": ev.args["permissions"],
            "expires_at": ev.args["expiresAt"],
            "terms_hash": ev.args["termsHash"],
            "generation": ev.args["generation"],
            "granted_by": None if by_owner else granter,
            "granter_epoch": epoch["epoch"] if epoch else 0,
            "block_number": ev.block_number,
        },
    )


@on("VehicleId", "ManagerKeysVoided")
def manager_keys_voided(ev: Event, s: Store) -> None:
    """The manager lost MANAGE_KEYS: its epoch moves on, and every key row recording an older
    epoch of it stops counting (as on chain, without touching those rows)."""
    s.put(
        "key_manager_epochs",
        {
            "vehicle_id": ev.args["vehicleId"],
            "manager": ev.args["manager"],
            "epoch": ev.args["epoch"],
            "block_number": ev.block_number,
        },
    )


@on("VehicleId", "KeyRevoked")
def key_revoked(ev: Event, s: Store) -> None:
    s.delete("vehicle_keys", ev.args["vehicleId"], ev.args["grantee"])


@on("VehicleId", "UpdateUser")
def update_user(ev: Event, s: Store) -> None:
    vehicle = s.get("vehicles", ev.args["tokenId"])
    s.put(
        "vehicle_users",
        {
            "vehicle_id": ev.args["tokenId"],
            "user": ev.args["user"],
            "expires": ev.args["expires"],
            "generation": vehicle["generation"] if vehicle else 0,
            "block_number": ev.block_number,
        },
    )


# --- AftermarketDevice ---------------------------------------------------------------------


@on("AftermarketDevice", "Transfer")
def device_transfer(ev: Event, s: Store) -> None:
    device_id, to = ev.args["tokenId"], ev.args["to"]
    row = s.get("devices", device_id) or {
        "device_id": device_id,
        "manufacturer": None,
        "device_signer": None,
        "serial_hash": None,
        "vehicle_id": None,
        "generation": 0,
        "revoked": False,
    }
    row.update(
        owner=None if to == ZERO_ADDRESS else to,
        generation=(row["generation"] or 0) + 1,
        block_number=ev.block_number,
    )
    s.put("devices", row)


@on("AftermarketDevice", "DeviceMinted")
def device_minted(ev: Event, s: Store) -> None:
    s.update(
        "devices",
        (ev.args["deviceId"],),
        manufacturer=ev.args["manufacturer"],
        device_signer=ev.args["deviceSigner"],
        serial_hash=ev.args["serialHash"],
        block_number=ev.block_number,
    )


@on("AftermarketDevice", "DeviceSignerRotated")
def device_signer_rotated(ev: Event, s: Store) -> None:
    s.update(
        "devices", (ev.args["deviceId"],), device_signer=ev.args["newSigner"], block_number=ev.block_number
    )


@on("AftermarketDevice", "DeviceRevoked")
def device_revoked(ev: Event, s: Store) -> None:
    s.update("devices", (ev.args["deviceId"],), revoked=True, block_number=ev.block_number)


@on("AftermarketDevice", "ManufacturerSet")
def manufacturer_set(ev: Event, s: Store) -> None:
    s.put(
        "manufacturers",
        {"address": ev.args["manufacturer"], "allowed": ev.args["allowed"], "block_number": ev.block_number},
    )


@on("AftermarketDevice", "Paired")
def paired(ev: Event, s: Store) -> None:
    vehicle_id, device_id = ev.args["vehicleId"], ev.args["deviceId"]
    device = s.get("devices", device_id)
    assert device is not None, f"Paired for unknown device {device_id}"
    previous = device["vehicle_id"]
    if previous is not None and previous != vehicle_id:
        stale = s.get("pairings", previous)
        if stale is not None and stale["device_id"] == device_id:
            s.delete("pairings", previous)
    vehicle = s.get("vehicles", vehicle_id)
    s.put(
        "pairings",
        {
            "vehicle_id": vehicle_id,
            "device_id": device_id,
            "generation": vehicle["generation"] if vehicle else None,
            "device_generation": device["generation"],
            "block_number": ev.block_number,
        },
    )
    s.update("devices", (device_id,), vehicle_id=vehicle_id, block_number=ev.block_number)


@on("AftermarketDevice", "Unpaired")
def unpaired(ev: Event, s: Store) -> None:
    vehicle_id, device_id = ev.args["vehicleId"], ev.args["deviceId"]
    current = s.get("pairings", vehicle_id)
    if current is not None and current["device_id"] == device_id:
        s.delete("pairings", vehicle_id)
    s.update("devices", (device_id,), vehicle_id=None, block_number=ev.block_number)
