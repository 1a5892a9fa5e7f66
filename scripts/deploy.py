"""Deploy every protocol contract and write deployments/<network>.json (DESIGN.md §5).

make deploy                      # RPC_URL, DEPLOYER_KEY from the environment
make deploy REDEPLOY=1           # replace an existing deployment
python -m scripts.deploy --production   # the DAO's timelock holds every role; the deployer none
ape run deploy --network ...     # the same through an ape provider
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from eth_account import Account
from web3 import Web3

from devkit.deployment import (
    ANVIL_DEPLOYER_KEY,
    AlreadyDeployedError,
    HotKeyIsDeployerError,
    HotKeys,
    deploy_all,
)
from workers.chain.deployment import Manifest
from workers.config import DEPLOYMENTS_DIR, get_settings

DEFAULT_RPC_URL = "http://127.0.0.1:8545"


def describe(manifest: Manifest, path: object) -> str:
    lines = [f"deployed to chain {manifest.chain_id} at block {manifest.block} -> {path}"]
    lines += [f"  {name:<18} {address}" for name, address in manifest.contracts.items()]
    return "\n".join(lines)


def production_hot_keys() -> HotKeys:
    """The hot keys of a production deployment, from SETTLER_ADDRESS (else SETTLER_KEY's
    address), MINTER_ADDRESS, SLASHER_ADDRESS and GUARDIAN_ADDRESS (each else nobody)."""
    settings = get_settings()
    settler = settings.settler_address or Account.from_key(settings.settler_key.get_secret_value()).address
    return HotKeys(
        settler=settler,
        minter=settings.minter_address,
        slasher=settings.slasher_address,
        guardian=settings.guardian_address,
    )


def run(
    w3: Web3, deployer_key: str, redeploy: bool, directory: Path = DEPLOYMENTS_DIR, production: bool = False
) -> int:
    hot_keys = production_hot_keys() if production else None
    try:
        manifest, path = deploy_all(
            w3, deployer_key, redeploy=redeploy, directory=directory, hot_keys=hot_keys
        )
    except (AlreadyDeployedError, HotKeyIsDeployerError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(describe(manifest, path))
    return 0


def main() -> None:
    """`ape run deploy`: deploy through the connected ape provider."""
    from ape import chain  # noqa: PLC0415 (ape is only needed under `ape run`)

    redeploy = os.environ.get("REDEPLOY", "") not in ("", "0")
    production = os.environ.get("PRODUCTION", "") not in ("", "0")
    code = run(
        chain.provider.web3,
        os.environ.get("DEPLOYER_KEY", ANVIL_DEPLOYER_KEY),
        redeploy,
        production=production,
    )
    if code:
        raise SystemExit(code)


def cli() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rpc-url", default=os.environ.get("RPC_URL", DEFAULT_RPC_URL))
    parser.add_argument("--redeploy", action="store_true", help="replace an existing deployment")
    parser.add_argument("--out-dir", type=Path, default=DEPLOYMENTS_DIR, help="where <network>.json goes")
    parser.add_argument(
        "--production",
        action="store_true",
        default=os.environ.get("PRODUCTION", "") not in ("", "0"),
        help="a non-devnet deployment: the deployer keeps no role (make deploy PRODUCTION=1)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    w3 = Web3(Web3.HTTPProvider(args.rpc_url, request_kwargs={"timeout": 60}))
    if not w3.is_connected():
        print(
            f"no JSON-RPC node answers at {args.rpc_url}: start one (anvil) or set RPC_URL", file=sys.stderr
        )
        return 1
    deployer_key = os.environ.get("DEPLOYER_KEY", ANVIL_DEPLOYER_KEY)
    return run(w3, deployer_key, args.redeploy, args.out_dir, production=args.production)


if __name__ == "__main__":
    sys.exit(cli())
