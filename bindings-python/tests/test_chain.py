"""The contracts on the embedded EVM through Python: stakes, jobs, the game played by agents,
balances, events and decoded reverts."""

from __future__ import annotations

import pytest

import oai
from conftest import mlp_spec, points

ETH = 10**18
ADA, BO, HONEST, CHEAT, CHALLENGER, REFEREE = (
    "0x" + f"{i:02x}" * 20 for i in range(1, 7)
)


@pytest.fixture
def chain() -> oai.Chain:
    c = oai.Chain.embedded(referees=[REFEREE], seed=7)
    for who in (ADA, BO, HONEST, CHEAT, CHALLENGER, REFEREE):
        c.set_balance(who, 10 * ETH)
    return c


def test_stakes_jobs_balances_and_events(chain, store):
    assert chain.balance(ADA) == 10 * ETH
    r = chain.register(HONEST, 2 * ETH)
    assert r.fee == 0 and r.gas_used > 0 and [e.name for e in r.events] == ["Registered"]
    ev = r.events[0]
    assert ev.contract == "NodeRegistry" and ev.address == chain.deployment["registry"]
    assert ev.args["node"].lower() == HONEST and ev.args["stake"] == 2 * ETH
    s = chain.stake(HONEST)
    assert s.registered and s.stake == 2 * ETH and s.locked == 0
    assert chain.balance(HONEST) == 8 * ETH

    ds = store.import_dataset("points", points())
    spec = mlp_spec(ds.cid, steps=6, checkpoint_every=3)
    job = chain.post_job(ADA, store, spec, reward=ETH, required_stake=2 * ETH)
    chain.fund_job(BO, job, ETH // 2)
    j = chain.job(job)
    assert (j.id, j.status, j.steps, j.reward) == (job, "open", 6, ETH + ETH // 2)
    assert j.requester.lower() == ADA and j.node is None and j.head is None
    assert store.has(j.spec)  # the spec was stored, by the CID the chain commits to

    chain.claim_job(HONEST, job)
    log = oai.train(store, spec)
    r = chain.submit_result(HONEST, job, log)
    j = chain.job(job)
    assert j.status == "submitted" and j.head == log.head and j.header == log.header
    with pytest.raises(oai.InvalidInputError, match="waits for no reveal"):
        chain.reveal(HONEST, job, log)
    # sampled steps come from a block made after the submission: none before it is made
    with pytest.raises(oai.InvalidInputError, match="not made yet"):
        chain.verify_result(store, job, samples=2, seed_delay=2)
    chain.advance_time(1)
    chain.advance_time(1)
    assert chain.verify_result(store, job, samples=2, seed_delay=2).accepted

    chain.advance_time(86_401)
    chain.finalize(HONEST, job)
    assert chain.owed(HONEST) == ETH + ETH // 2
    chain.withdraw(HONEST)
    assert chain.balance(HONEST) == 8 * ETH + ETH + ETH // 2

    names = [e.name for e in chain.events()]
    for want in ("Registered", "JobPosted", "Funded", "Claimed", "Submitted", "Finalized"):
        assert want in names
    assert all(e.block >= 1 for e in chain.events())
    assert repr(chain.events()[0]).startswith("<oai.ChainEvent block")


def test_a_revert_is_a_chain_revert_error_with_the_decoded_error(chain):
    with pytest.raises(oai.ChainRevertError) as info:
        chain.register(HONEST, 1)  # below the minimum stake
    e = info.value
    assert isinstance(e, oai.OaiError)
    assert e.contract == "NodeRegistry" and e.error == "StakeTooLow"
    assert e.fields == {"sent": 1, "minimum": ETH}
    assert "StakeTooLow" in str(e) and "register" in e.call
    assert chain.balance(HONEST) == 10 * ETH  # nothing changed

    with pytest.raises(oai.ChainRevertError) as info:
        chain.claim_job(HONEST, 42)  # no such job
    assert info.value.contract == "TrainingMarket" and info.value.error


def test_bad_input_is_refused_before_anything_is_sent(chain, store):
    before = chain.block_number()
    with pytest.raises(oai.InvalidInputError, match="not an address"):
        chain.balance("0x12")
    with pytest.raises(TypeError, match="address"):
        chain.balance(12)
    with pytest.raises(TypeError, match="int"):
        chain.register(HONEST, 1.5)
    with pytest.raises(TypeError, match="int"):
        chain.register(HONEST, True)
    with pytest.raises(oai.InvalidInputError, match="wei"):
        chain.register(HONEST, -1)
    with pytest.raises(oai.InvalidInputError, match="wei"):
        chain.register(HONEST, 2**256)
    with pytest.raises(oai.InvalidInputError, match="32-byte"):
        chain.bisect(HONEST, 1, "0xabc")
    with pytest.raises(oai.InvalidInputError, match="threshold"):
        oai.Chain.embedded(referees=[])
    with pytest.raises(oai.ChainRevertError, match="UnknownJob") as info:
        chain.challenge(CHALLENGER, 1)  # no job 1
    assert info.value.error == "UnknownJob" and info.value.fields == {"jobId": 1}
    ds = store.import_dataset("points", points())
    with pytest.raises(oai.InvalidInputError):
        chain.post_job(ADA, store, {"dataset": ds.cid}, reward=ETH, required_stake=ETH)
    other = oai.Store.memory()
    with pytest.raises(oai.NotFoundError):  # the spec's dataset is not in that store
        chain.post_job(ADA, other, mlp_spec(ds.cid), reward=ETH, required_stake=ETH)
    other.close()
    with pytest.raises(oai.StoreClosedError):
        chain.post_job(ADA, other, mlp_spec(ds.cid), reward=ETH, required_stake=ETH)
    assert chain.block_number() == before  # nothing of the above was sent

    job = chain.post_job(ADA, store, mlp_spec(ds.cid), reward=ETH, required_stake=ETH)
    with pytest.raises(oai.InvalidInputError, match="no result"):
        chain.challenge(CHALLENGER, job)
    with pytest.raises(oai.InvalidInputError, match="no dispute"):
        chain.case_id(job)
    assert chain.dispute(job) is None


def test_agents_slash_a_cheat_and_pay_the_honest_node(chain, store):
    ds = store.import_dataset("points", points())
    spec = mlp_spec(ds.cid, steps=8, checkpoint_every=4)
    honest_job = chain.post_job(ADA, store, spec, reward=ETH, required_stake=ETH)
    for node in (HONEST, CHEAT, CHALLENGER):
        chain.register(node, 2 * ETH)
    agents = {
        "honest": oai.Agent.node(chain, store, HONEST),
        "challenger": oai.Agent.challenger(chain, store, CHALLENGER, parallelism=2),
        "referee": oai.Agent.referee(chain, store, REFEREE),
    }
    # the honest node tries the first job in its first tick (a few steps in the background,
    # to time a step) and claims it in the next; the cheat gets the second
    assert agents["honest"].tick() == [f"job {honest_job}: trying 3 steps before claiming"]
    agents["honest"].idle()
    assert not agents["honest"].busy
    assert any("claimed" in line for line in agents["honest"].tick())
    cheat_job = chain.post_job(BO, store, spec, reward=ETH, required_stake=ETH)
    agents = {"cheat": oai.Agent.node(chain, store, CHEAT, forge_loss_at_step=5), **agents}
    seen = []
    rounds = chain.play(agents, progress=lambda who, line: seen.append((who, line)))
    assert rounds >= 1 and any(who is None for who, _ in seen)
    assert chain.job(honest_job).status == "paid"
    assert chain.job(cheat_job).status == "slashed"
    assert chain.stake(CHEAT).stake == ETH  # lost the locked stake
    names = [e.name for e in chain.events()]
    assert "Challenged" in names and "Slashed" in names
    assert agents["cheat"].role == "node" and agents["cheat"].account.lower() == CHEAT
    assert not chain.verify_result(store, cheat_job)  # a full replay rejects it too


def test_a_progress_callback_that_raises_is_reraised(chain, store):
    ds = store.import_dataset("points", points())
    chain.post_job(ADA, store, mlp_spec(ds.cid, steps=4), reward=ETH, required_stake=ETH)
    chain.register(HONEST, 2 * ETH)
    node = oai.Agent.node(chain, store, HONEST)

    def boom(who, line):
        raise KeyError("stop")

    with pytest.raises(KeyError):
        chain.play({"node": node}, progress=boom)
    assert node.tick() is not None  # the agent is usable again


def test_the_training_dao_changes_the_rules_by_vote():
    c = oai.Chain.embedded(
        referees=[REFEREE], seed=3, dao_members=[(ADA, 1), (BO, 2)], timelock=3600
    )
    g = c.governance()
    assert g["dao"] == c.deployment["dao"] and g["dao"] is not None
    assert [r.lower() for r in g["referees"]] == [REFEREE]
    assert (g["threshold"], g["epoch"], g["burn_bps"], g["open"]) == (1, 0, 5000, True)

    pid = c.propose_change(ADA, "referees", referees=[CHALLENGER, HONEST, CHEAT])
    c.vote_change(BO, pid, True)
    with pytest.raises(oai.ChainRevertError) as info:
        c.execute_change(ADA, pid)
    assert (info.value.contract, info.value.error) == ("TrainingDAO", "TimelockActive")
    c.advance_time(3600)
    c.execute_change(ADA, pid)
    g = c.governance()
    assert [r.lower() for r in g["referees"]] == [CHALLENGER, HONEST, CHEAT]
    assert (g["threshold"], g["epoch"]) == (2, 1)

    pid = c.propose_change(BO, "parameters", burn_bps=2000)
    c.vote_change(BO, pid, True)
    c.advance_time(3600)
    c.execute_change(CHEAT, pid)
    g = c.governance()
    assert (g["burn_bps"], g["move_timeout"]) == (2000, 3600)

    with pytest.raises(ValueError, match="no change of kind"):
        c.propose_change(ADA, "everything")
    with pytest.raises(ValueError, match="wei"):
        c.propose_change(ADA, "min_stake")
    with pytest.raises(oai.ChainRevertError) as info:
        c.propose_change(CHEAT, "admission", open=False)  # not a member
    assert info.value.error == "NotMember"


def test_a_chain_without_a_dao_changes_nothing(chain):
    assert chain.deployment["dao"] is None and chain.governance()["dao"] is None
    with pytest.raises(oai.InvalidInputError, match="no training DAO"):
        chain.propose_change(ADA, "admission", open=False)
