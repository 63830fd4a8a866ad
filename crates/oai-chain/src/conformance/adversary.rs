//! Random adversarial games: one honest party against an adversary that picks any commitment at
//! any move, any timing (including none) and plays from several accounts, with a model referee
//! that re-executes a step exactly. After each game: the honest party lost no wei (net of its
//! gas), the adversary gained none, the funders lost nothing they did not pay for, and every
//! wei is conserved (what the market burned included).

use alloy::primitives::{keccak256, Address, B256, U256};

use super::attacks::Ledger;
use super::claims::{honest_block, sha};
use super::{eth, terms, Claims, Roles, Scenario, DAY, HOUR};
use crate::bindings::TrainingMarket::TrainingMarketErrors as M;
use crate::{Chain, Evm, JobId, JobStatus, JobTerms, Result, Revert, Turn};

/// The block a step gives from the state `x` after step `i`, off the honest run.
fn succ_block(i: u64, x: B256) -> Vec<u8> {
    format!("state after step {} from {x}", i + 1).into_bytes()
}

/// The true state after step `i + 1` from the state `x` after step `i`: what a referee's
/// re-execution gives. The honest run starts at `honest(0)`.
fn succ(i: u64, x: B256) -> B256 {
    if x == honest(i) {
        honest(i + 1)
    } else {
        sha(&succ_block(i, x))
    }
}

/// The node's log: honest up to step `forged` (exclusive), one wrong step, then every later
/// step computed correctly from the wrong state.
fn node_log(steps: u64, forged: Option<u64>) -> Claims {
    let mut blocks = vec![honest_block(0)];
    for i in 1..=steps {
        let block = match forged {
            Some(b) if i == b + 1 => format!("forged step {b}").into_bytes(),
            Some(b) if i > b + 1 => succ_block(i - 1, sha(&blocks[i as usize - 1])),
            _ => honest_block(i),
        };
        blocks.push(block);
    }
    Claims::new(steps, move |i| blocks[i as usize].clone())
}

fn honest(i: u64) -> B256 {
    super::honest(i)
}

/// A game to play: the log length, the step the node forges (`None`: the node is honest and
/// the challengers are the adversary) and the adversary's choices, read one at a time (0 once
/// they run out).
#[derive(Debug, Clone)]
pub struct GamePlan {
    /// Steps of the job (at least 1).
    pub steps: u64,
    /// The one step the node computes wrongly; every later step follows from its wrong state.
    pub forged_step: Option<u64>,
    /// The adversary's choices.
    pub choices: Vec<u8>,
}

/// How a game ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameOutcome {
    /// The job's final status.
    pub status: JobStatus,
    /// Disputes played.
    pub disputes: u32,
    /// Transactions sent.
    pub moves: u32,
}

struct Choices<'a>(std::slice::Iter<'a, u8>);

impl Choices<'_> {
    fn next(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }

    /// A commitment for step `i`: the node's log's, the honest one, or arbitrary; `None`: stay
    /// silent.
    fn commitment(&mut self, i: u64, log: &Claims) -> Option<B256> {
        match self.next() % 5 {
            0 | 3 => Some(log.at(i)),
            1 => Some(honest(i)),
            2 => Some(keccak256([b"any".as_slice(), &[self.next()]].concat())),
            _ => None,
        }
    }
}

/// Play `plan` on a fresh deployment on `evm` (accounts as for [`super::run`]) and check the
/// invariants; returns how it ended. Panics, like a test, when an invariant breaks.
pub async fn adversarial_game<E: Evm + 'static>(
    evm: std::sync::Arc<E>,
    accounts: &[Address],
    plan: &GamePlan,
) -> Result<GameOutcome> {
    assert!(plan.steps >= 1, "a job has at least one step");
    super::fund(evm.as_ref(), accounts).await?;
    let mut ignored = Vec::new();
    let r = Roles::new(accounts);
    let mut s = Scenario::new(evm, r, "adversarial game", &mut ignored).await?;
    let n = plan.steps;
    let forged = plan.forged_step.map(|b| b.min(n - 1));
    let log = node_log(n, forged);
    let cheating = forged.is_some();
    // who plays honestly, who is the adversary
    let (node, puppet, challenger, rival) = (r.node, r.node2, r.challenger, r.funder);
    let everyone = [node, puppet, challenger, rival, r.requester];
    let mut l = Ledger::open(&s, &everyone).await?;
    let mut ch = Choices(plan.choices.iter());

    let reg = s.chain.register(node, eth(3)).await;
    l.ok(&mut s, node, "register", reg);
    let t = JobTerms {
        steps: n,
        ..terms("adversarial game")
    };
    let (job, rc) = s.chain.post_job(r.requester, &t, eth(2)).await?;
    l.ok(&mut s, r.requester, "postJob", Ok(rc));
    let c = s.chain.claim_job(node, job).await;
    l.ok(&mut s, node, "claim", c);
    let sub = log.submit(&s.chain, node, job).await;
    l.ok(&mut s, node, "submit", sub);

    let (mut disputes, mut moves) = (0u32, 0u32);
    for _ in 0..400 {
        let j = s.chain.job(job).await?;
        match j.status {
            JobStatus::Paid | JobStatus::Slashed => break,
            JobStatus::Submitted => {
                if s.chain.now().await? >= j.deadline {
                    let f = s.chain.finalize(node, job).await;
                    l.ok(&mut s, node, "finalize", f);
                    continue;
                }
                // the adversary may open a dispute from any of its accounts, a few times
                let adversaries: &[Address] = if cheating {
                    &[puppet]
                } else {
                    &[challenger, rival, puppet]
                };
                let by = adversaries[ch.next() as usize % adversaries.len()];
                let sham = disputes < 3 && ch.next().is_multiple_of(2);
                if sham && ch.next().is_multiple_of(4) {
                    // a terms challenge: every log of these games answers its terms, so it fails
                    let c = s.chain.challenge_terms(by, job, eth(2)).await;
                    l.ok(&mut s, by, "challengeTerms (adversary)", c);
                    disputes += 1;
                    continue;
                }
                if sham {
                    let claim = if ch.next().is_multiple_of(2) {
                        honest(n)
                    } else {
                        keccak256([b"claim".as_slice(), &[ch.next()]].concat())
                    };
                    if claim != log.at(n) {
                        let c = s.chain.challenge(by, job, claim, eth(2)).await;
                        l.ok(&mut s, by, "challenge (adversary)", c);
                        disputes += 1;
                        continue;
                    }
                }
                if cheating {
                    // the honest challenger disputes a wrong head at once
                    let c = s.chain.challenge(challenger, job, honest(n), eth(2)).await;
                    l.ok(&mut s, challenger, "challenge (honest)", c);
                    disputes += 1;
                } else {
                    s.chain
                        .advance_time(j.deadline - s.chain.now().await?)
                        .await?;
                }
            }
            JobStatus::Disputed => {
                moves += 1;
                play_move(&mut s, &mut l, &mut ch, job, cheating, &log).await?;
            }
            other => panic!("unexpected status {other:?}"),
        }
    }
    let status = s.chain.job(job).await?.status;
    if status == JobStatus::Slashed {
        let rf = s.chain.refund(r.requester, job).await;
        l.ok(&mut s, r.requester, "refund", rf);
    }
    for who in everyone {
        if s.chain.owed(who).await? > U256::ZERO {
            let w = s.chain.withdraw(who).await;
            l.ok(&mut s, who, "withdraw", w);
        }
    }
    // the invariants
    let honest_party = if cheating { challenger } else { node };
    let adversary: Vec<Address> = if cheating {
        vec![node, puppet]
    } else {
        vec![challenger, rival, puppet]
    };
    let (g, lo) = l.net(&s, &[honest_party]).await?;
    assert_eq!(lo, U256::ZERO, "{plan:?}: the honest party lost {lo} wei");
    let (g_adv, lost_adv) = l.net(&s, &adversary).await?;
    assert_eq!(
        g_adv,
        U256::ZERO,
        "{plan:?}: the adversary gained {g_adv} wei"
    );
    if cheating {
        // slashed by the honest challenger or by its own puppet: half the stake burned at least
        assert!(
            lost_adv >= eth(1),
            "{plan:?}: cheating cost only {lost_adv} wei"
        );
    }
    let requester = l.net(&s, &[r.requester]).await?;
    if cheating {
        assert_eq!(
            status,
            JobStatus::Slashed,
            "{plan:?}: a wrong result was paid"
        );
        assert_eq!(requester, (U256::ZERO, U256::ZERO), "{plan:?}: refunded");
    } else {
        assert_eq!(
            status,
            JobStatus::Paid,
            "{plan:?}: an honest result not paid"
        );
        assert!(g >= eth(2), "{plan:?}: the honest node gained only {g} wei");
        assert_eq!(requester, (U256::ZERO, eth(2)), "{plan:?}: paid the reward");
    }
    s.check_market_empty().await?;
    s.check_conservation("after an adversarial game").await?;
    Ok(GameOutcome {
        status,
        disputes,
        moves,
    })
}

/// One move of the running dispute: the honest side moves from the honest run, the adversary as
/// its choices say (silence included, which lets the deadline pass and the other side time it
/// out); a step waiting for adjudication gets the model referees' votes and is resolved.
async fn play_move<E: Evm>(
    s: &mut Scenario<E>,
    l: &mut Ledger,
    ch: &mut Choices<'_>,
    job: JobId,
    cheating: bool,
    log: &Claims,
) -> Result<()> {
    let r = s.r;
    let d = s.chain.dispute(job).await?.expect("a running dispute");
    let honest_challenger = d.challenger == r.challenger && cheating;
    let (mover, value) = match d.turn {
        Turn::Adjudication => {
            let honest_side = if cheating { r.challenger } else { r.node };
            let res = s.chain.resolve(honest_side, job).await;
            let undecided = matches!(&res, Err(e)
                if matches!(e.revert(), Some(Revert::Market(M::NoVerdict(_)))));
            if !undecided {
                // a case decided in an earlier dispute (another challenger, the same step)
                l.ok(s, honest_side, "resolve", res);
                return Ok(());
            }
            let case = s.chain.case_id(job, &d).await?;
            // a step re-executed exactly; the logs of these games all answer their terms
            let correct = d.is_terms() || d.node_hi == succ(d.lo, d.agreed);
            for referee in &r.referees[..2] {
                let v = s.chain.referee_vote(*referee, case, correct).await;
                l.ok(s, *referee, "vote", v);
            }
            if ch.next().is_multiple_of(3) {
                // the adversary waits out the adjudication deadline and calls `timeout` first
                s.chain.advance_time(3 * DAY + 1).await?;
                let adversary = if cheating { r.node } else { d.challenger };
                let t = s.chain.timeout(adversary, job).await;
                l.ok(s, adversary, "timeout (a decided case)", t);
                return Ok(());
            }
            let res = s.chain.resolve(honest_side, job).await;
            l.ok(s, honest_side, "resolve", res);
            return Ok(());
        }
        // the honest node reveals its record; a cheating node may reveal, lie or stay silent
        Turn::Reveal => {
            let block = match (cheating, ch.next() % 3) {
                (true, 1) => Some(honest_block(d.hi)),
                (true, 2) => None,
                _ => Some(log.block(d.hi)),
            };
            let Some(block) = block else {
                s.chain.advance_time(HOUR + 1).await?;
                let t = s.chain.timeout(d.challenger, job).await;
                l.ok(s, d.challenger, "timeout (no reveal)", t);
                return Ok(());
            };
            // the proofs from its log: they hold only where it posted its log's commitments
            let (p_lo, p_hi) = (log.proof(d.lo), log.proof(d.hi));
            let rv = s.chain.reveal(r.node, job, &block, &p_lo, &p_hi).await;
            let proven = (d.lo == 0 || d.agreed == log.at(d.lo))
                && (d.hi == log.steps() || d.node_hi == log.at(d.hi));
            if sha(&block) == d.node_hi && proven {
                l.ok(s, r.node, "reveal", rv);
                return Ok(());
            }
            s.reverts("a reveal that does not hold", rv, |e| {
                matches!(e, Revert::Market(M::BadReveal(_) | M::BadProof(_)))
            });
            if !proven {
                // nothing the node can post holds: the challenger times it out
                s.chain.advance_time(HOUR + 1).await?;
                let t = s.chain.timeout(d.challenger, job).await;
                l.ok(s, d.challenger, "timeout (no proof)", t);
            }
            return Ok(());
        }
        // the honest node answers from its (honest) log; a cheating node as it likes (what it
        // posts off its log it cannot prove at the reveal)
        Turn::Node if !cheating => (r.node, Some(honest(d.mid()))),
        Turn::Node => (r.node, ch.commitment(d.mid(), log)),
        // the honest challenger agrees exactly with the honest commitments
        Turn::Challenger if honest_challenger => (d.challenger, Some(honest(d.mid()))),
        Turn::Challenger => (d.challenger, ch.commitment(d.mid(), log)),
    };
    match value {
        Some(c) => {
            let m = s.chain.bisect(mover, job, c).await;
            l.ok(s, mover, "bisect", m);
        }
        None => {
            // silence: the deadline passes and the side whose turn it is not times it out
            s.chain.advance_time(HOUR + 1).await?;
            let other = if d.turn == Turn::Node {
                d.challenger
            } else {
                r.node
            };
            let t = s.chain.timeout(other, job).await;
            l.ok(s, other, "timeout", t);
        }
    }
    Ok(())
}
