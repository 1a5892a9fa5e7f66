"""The dev kit: everything that runs the protocol on a developer's machine or a devnet and
never in a deployment of the workers — the local stack (`make up`, `make demo`), anvil nodes,
the devnet deployment (`make deploy`), the OEM cloud simulator, the demo's story, the `ape
console` helpers, and the scratch databases and market world the tests and benchmarks share.

It imports the runtime (`workers/`); the runtime never imports it
(tests/workers/test_runtime_boundary.py), and the production image does not carry it
(tests/workers/test_deploy_files.py)."""
