"""The workers' view of the chain (DESIGN.md §4), bottom layer: it imports the settings and,
for the outbox, the database models, and nothing else of the workers.

    rpc.py         JSON-RPC client, its errors and retries
    artifacts.py   compiled artifacts (ABIs, bytecode), ABI types, revert decoding
    deployment.py  the deployment manifest, verified against the chain: `connect(settings)`
    views.py       `Chain`, the one chain handle: RPC, web3 contracts, read-only views
    outbox.py      `TxSender`: transactions recorded with their nonce before they are sent

The outbox moves money and is not re-exported here: import it from `workers.chain.outbox`
(the gateway never does).
"""

from __future__ import annotations

from workers.chain.artifacts import ArtifactError, load_artifact
from workers.chain.deployment import DeploymentMismatchError, Manifest, ManifestError, connect
from workers.chain.rpc import RangeTooLargeError, Rpc, RpcError, TransientRpcError, with_rpc_retries
from workers.chain.views import Chain

__all__ = [
    "ArtifactError",
    "Chain",
    "DeploymentMismatchError",
    "Manifest",
    "ManifestError",
    "RangeTooLargeError",
    "Rpc",
    "RpcError",
    "TransientRpcError",
    "connect",
    "load_artifact",
    "with_rpc_retries",
]
