"""Devnet setup for OEM onboarding: VehicleId's connections made to match OEM_CONNECTIONS
(each configured id, its name, this worker's ORACLE_KEY as oracle, active). The OEM tests
and the deployment test call it after deploying (the demo's DAO adds its connections in the
story); on a real network the DAO adds connections by vote."""

from __future__ import annotations

from eth_account import Account
from web3.contract import Contract

from devkit.deployment import Deployer
from workers.config import Settings


def register_connections(vehicle_id: Contract, governor: Deployer, settings: Settings) -> dict[int, str]:
    """Adds or re-points VehicleId connections so that every configured connection id exists
    with ORACLE_KEY's address as oracle and is active. Connection ids are assigned by
    VehicleId in order, so configured ids must be 1..n without gaps. Returns id -> name."""
    oracle = Account.from_key(settings.oracle_key.get_secret_value()).address
    wanted = sorted(settings.oem_connection_list(), key=lambda c: c.connection_id)
    ids = [c.connection_id for c in wanted]
    if ids != list(range(1, len(ids) + 1)):
        raise ValueError(f"OEM connection ids must be 1..n in order to be created on chain, got {ids}")
    existing = int(vehicle_id.functions.connectionCount().call())
    for connection in wanted:
        if connection.connection_id <= existing:
            _, current_oracle, active = vehicle_id.functions.connection(connection.connection_id).call()
            if current_oracle != oracle or not active:
                governor.call(vehicle_id, "setConnection", connection.connection_id, oracle, True)
        else:
            governor.call(vehicle_id, "addConnection", connection.name, oracle)
    return {c.connection_id: c.name for c in wanted}
