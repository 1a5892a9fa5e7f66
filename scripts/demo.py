"""`make demo`: start a local chain, deploy the protocol, and show what is there.

Every process the demo starts is stopped when it ends, on success or failure.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from eth_account import Account

import ape_console_extras
from workers.deployment import ANVIL_DEPLOYER_KEY, deploy_all
from workers.devnet import ANVIL_KEYS, AnvilNode

DIMO = 10**18


def dimo(amount: int) -> str:
    whole, frac = divmod(amount, DIMO)
    return f"{whole:,}.{frac:018d} DIMO"


def step(title: str) -> None:
    print(f"\n== {title}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dimo-demo-") as tmp:
        step("starting a local chain (anvil)")
        node = AnvilNode(log_dir=Path(tmp))
        try:
            print(f"anvil on {node.url}, chain id {node.w3.eth.chain_id}")
            step("deploying the protocol")
            manifest, _ = deploy_all(node.w3, ANVIL_DEPLOYER_KEY, directory=Path(tmp))
            for name, address in manifest.contracts.items():
                print(f"  {name:<18} {address}")
            ns = ape_console_extras.build_namespace(node.w3, manifest)
            token, treasury, send = ns["token"], ns["treasury"], ns["send"]
            dao = Account.from_key(ANVIL_DEPLOYER_KEY).address

            step("roles (DESIGN.md §5: on a devnet the deployer is the DAO)")
            for contract_name, roles in manifest.roles.items():
                for role, holders in roles.items():
                    print(f"  {contract_name}.{role}: {', '.join(holders)}")

            step("the DAO funds the treasury and releases a grant by governance")
            grantee = Account.from_key(ANVIL_KEYS[1]).address
            send(token.functions.transfer(treasury.address, 1_000 * DIMO))
            send(treasury.functions.release(token.address, grantee, 250 * DIMO))
            for who, address in (("DAO", dao), ("treasury", treasury.address), ("grantee", grantee)):
                print(f"  {who:<9} {dimo(token.functions.balanceOf(address).call())}")
            supply = token.functions.totalSupply().call()
            print(f"  supply    {dimo(supply)} (cap {dimo(token.functions.cap().call())})")
        finally:
            node.stop()
            print("\nstopped anvil; nothing left running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
