//! Gas of the contracts, per party, on the embedded EVM (anvil charges the same gas for the
//! same transactions: `oai-chain`'s conformance test checks every one of them):
//! - the honest path: a job posted, claimed, submitted, finalized after its window, paid out;
//! - a step dispute over a 1,000,000-step log (the node forged step 777,777): the challenge,
//!   20 bisection rounds, the node's reveal of the disputed record with the proofs of its two
//!   commitments, the referees' votes and the resolution that slashes the node, next to
//!   issue 30's budget of 2.5M gas;
//! - a terms dispute (a result wrong on its face, decided without bisection) next to the step
//!   dispute.
//!
//! Run: `cargo bench -p oai-benches --bench chain`

use std::sync::Arc;

use oai_benches::report::{self, Row, Side};
use oai_chain::conformance::{self, DisputeGas, ACCOUNTS};
use oai_chain::{Address, Chain, Contracts, JobResult, JobTerms, Revm, B256, U256};

const STEPS: u64 = 1_000_000;
const BUDGET: u64 = 2_500_000;
/// Bytes of the header the honest path posts.
const HEADER_BYTES: usize = 320;

fn accounts() -> Vec<Address> {
    (1..=ACCOUNTS as u8).map(Address::repeat_byte).collect()
}

/// Gas each party spends on an honest job: (requester, node).
async fn honest_path() -> (u64, u64) {
    let evm = Arc::new(Revm::new());
    let a = accounts();
    let eth = U256::from(10u128.pow(18));
    for who in &a {
        oai_chain::Evm::set_balance(evm.as_ref(), *who, eth * U256::from(100))
            .await
            .unwrap();
    }
    let (chain, _) = Contracts::deploy(evm, a[0], &conformance::config(&a[6..9]))
        .await
        .unwrap();
    let (requester, node) = (a[3], a[1]);
    chain.register(node, eth * U256::from(2)).await.unwrap();
    let terms = JobTerms {
        dataset_root: B256::repeat_byte(1),
        spec: B256::repeat_byte(2),
        steps: STEPS,
        claim_window: 86_400,
        max_duration: 86_400,
        challenge_window: 86_400,
        required_stake: eth,
    };
    let (job, post) = chain.post_job(requester, &terms, eth).await.unwrap();
    // a log header of the size of the quickstart MLP's (posted with the result)
    let header = vec![0xa5u8; HEADER_BYTES];
    let result = JobResult {
        genesis: B256::from(oai_core::Digest::of(&header).0),
        head: B256::repeat_byte(4),
        root: B256::repeat_byte(5),
    };
    let mut node_gas = chain.claim_job(node, job).await.unwrap().gas_used;
    node_gas += chain
        .submit_result(node, job, &header, &result)
        .await
        .unwrap()
        .gas_used;
    chain.advance_time(86_400).await.unwrap();
    node_gas += chain.finalize(node, job).await.unwrap().gas_used;
    node_gas += chain.withdraw(node).await.unwrap().gas_used;
    (post.gas_used, node_gas)
}

/// (node, challenger, referees) of a dispute.
fn per_party(d: &DisputeGas) -> (u64, u64, u64) {
    let node = d.rounds.iter().map(|(n, _)| n).sum::<u64>() + d.reveal;
    let challenger = d.challenge + d.rounds.iter().map(|(_, c)| c).sum::<u64>() + d.resolve;
    (node, challenger, d.votes.iter().sum())
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (requester, node) = rt.block_on(honest_path());
    let step = rt
        .block_on(conformance::measure_dispute(
            Arc::new(Revm::new()),
            &accounts(),
            STEPS,
            777_777,
        ))
        .unwrap();
    let terms = rt
        .block_on(conformance::measure_terms_dispute(
            Arc::new(Revm::new()),
            &accounts(),
            STEPS,
        ))
        .unwrap();
    println!("gas per party (embedded EVM; anvil charges the same):");
    println!("  honest job: requester {requester} (post), node {node} (claim, submit, finalize, withdraw)");
    for (what, d) in [("step dispute", &step), ("terms dispute", &terms)] {
        let (n, c, r) = per_party(d);
        println!(
            "  {what} over {STEPS} steps ({} rounds): node {n}, challenger {c} (challenge, moves, resolve), referees {r}; total {}",
            d.rounds.len(),
            d.total()
        );
        println!(
            "    challenge {}, node moves {}, challenger moves {}, reveal {}, votes {:?}, resolve {}",
            d.challenge,
            d.rounds.iter().map(|(n, _)| n).sum::<u64>(),
            d.rounds.iter().map(|(_, c)| c).sum::<u64>(),
            d.reveal,
            d.votes,
            d.resolve
        );
    }
    report::record(
        Row::new(
            "chain",
            format!("a whole step dispute over a {STEPS}-step log, challenge to slashing (gas)"),
            Side::new(
                format!("{} bisection rounds, 2 votes, resolve", step.rounds.len()),
                step.total() as f64,
                "gas",
            ),
            Side::new("issue 30's budget", BUDGET as f64, "gas"),
            false,
        )
        .target(1.0),
    );
    report::record(Row::new(
        "chain",
        "a result wrong on its face, challenge to slashing (gas)",
        Side::new("terms dispute, no bisection", terms.total() as f64, "gas"),
        Side::new(
            "step dispute over 1,000,000 steps",
            step.total() as f64,
            "gas",
        ),
        false,
    ));
    let (n, c, _) = per_party(&step);
    report::record(Row::new(
        "chain",
        "gas per party in a step dispute over 1,000,000 steps",
        Side::new("challenger (challenge, 20 moves, resolve)", c as f64, "gas"),
        Side::new("node (20 moves)", n as f64, "gas"),
        false,
    ));
    report::record(Row::new(
        "chain",
        "gas per party on an honest job",
        Side::new(
            "node (claim, submit, finalize, withdraw)",
            node as f64,
            "gas",
        ),
        Side::new("requester (post)", requester as f64, "gas"),
        false,
    ));
}
