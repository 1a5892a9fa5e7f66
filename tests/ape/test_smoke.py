def test_deploy(manifest, chain):
    m, _ = manifest
    assert chain.provider.web3.eth.get_code(m.address("Treasury"))
