"""One DAO proposal end to end on anvil through ape: a staker whose DIMO is all staked
proposes and votes with its staked votes, ape's chain clock is moved past the voting delay, the
voting period and the timelock's delay, and the timelock executes; executing before the delay
is refused, and the deployer, which is no admin, cannot do what only the timelock may."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.exceptions import ContractLogicError

from devkit.deployment import DeploymentTxError
from tests.support.anvil import ANVIL_KEYS
from workers.config import DEVNET_GOVERNANCE
from workers.protocol import DIMO, GOVERNOR_ROLE

STAKE = 50_000_000 * DIMO  # 5 % of the supply: above the 4 % quorum on its own


def move_clock(chain, seconds: int) -> None:
    chain.pending_timestamp = chain.pending_timestamp + seconds
    chain.mine()


def test_a_proposal_runs_end_to_end_on_staked_votes(console, chain) -> None:
    ns = console
    send, token, staking, governor, treasury = (
        ns["send"],
        ns["token"],
        ns["staking"],
        ns["governor"],
        ns["treasury"],
    )
    staker = ns["signer"](2)
    recipient = Account.from_key(ANVIL_KEYS[9]).address
    # The staker delegates on the token, then stakes everything it has: no DIMO left in hand.
    send(token.functions.transfer(staker.address, STAKE))
    send(token.functions.delegate(staker.address), sender=staker)
    send(token.functions.approve(staking.address, STAKE), sender=staker)
    send(staking.functions.stake(STAKE), sender=staker)
    assert token.functions.getVotes(staker.address).call() == 0
    assert staking.functions.getVotes(staker.address).call() == STAKE
    send(token.functions.transfer(treasury.address, 1_000 * DIMO))

    p = ns["propose"](
        treasury.functions.release(token.address, recipient, 1_000 * DIMO),
        description="Grant 1,000 DIMO to account 9",
        sender=staker,
    )
    assert ns["state"](p) == "Pending"
    move_clock(chain, DEVNET_GOVERNANCE.voting_delay + 1)
    assert ns["state"](p) == "Active"
    ns["vote"](p, sender=staker)
    against, for_votes, abstain = governor.functions.proposalVotes(p.proposal_id).call()
    assert (against, for_votes, abstain) == (0, STAKE, 0)
    move_clock(chain, DEVNET_GOVERNANCE.voting_period)
    assert ns["state"](p) == "Succeeded"
    ns["queue"](p)
    assert ns["state"](p) == "Queued"
    with pytest.raises(DeploymentTxError):
        ns["execute"](p)  # the timelock's delay has not passed
    move_clock(chain, DEVNET_GOVERNANCE.timelock_delay)
    ns["execute"](p)
    assert ns["state"](p) == "Executed"
    assert token.functions.balanceOf(recipient).call() == 1_000 * DIMO


def test_only_the_timelock_makes_governors(console) -> None:
    ns = console
    treasury, dao = ns["treasury"], ns["dao"].account.address
    assert treasury.functions.defaultAdmin().call() == ns["timelock"].address
    with pytest.raises(ContractLogicError):
        treasury.functions.grantRole(GOVERNOR_ROLE, dao).call({"from": dao})
