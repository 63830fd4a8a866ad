//! Gas of every oai contract call, and of a whole dispute over a 1,000,000-step training log,
//! measured by running the conformance suite: on the embedded EVM, and side by side on a real
//! anvil node when one is found (`$OAI_ANVIL`, the npm package under `.ci/node`, or `PATH`).
//!
//! ```text
//! cargo run --release -p oai-examples --example chain_gas
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use oai::chain::conformance::{self, ACCOUNTS};
use oai::chain::rpc::{dev_signers, Anvil, RpcEvm};
use oai::chain::{Address, Revm};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let accounts: Vec<Address> = dev_signers(ACCOUNTS).iter().map(|s| s.address()).collect();
    let embedded = conformance::run(Arc::new(Revm::new()), &accounts).await?;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let anvil = match Anvil::locate(&root) {
        Some(bin) => {
            let node = Anvil::start(&bin).await?;
            let rpc = RpcEvm::connect(node.url(), dev_signers(ACCOUNTS)).await?;
            Some(conformance::run(Arc::new(rpc), &accounts).await?)
        }
        None => None,
    };

    // per call: how often the suite sent it and its gas range (the bisection's interval and
    // other notes in parentheses are folded into one row)
    let mut calls: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    for (label, gas) in &embedded {
        let call = label.rsplit_once(": ").map_or(label.as_str(), |(_, c)| c);
        let call = call.split_once(" (").map_or(call, |(c, _)| c);
        let e = calls.entry(call).or_insert((0, u64::MAX, 0));
        *e = (e.0 + 1, e.1.min(*gas), e.2.max(*gas));
    }
    println!(
        "gas per call ({} transactions of the conformance suite, embedded EVM, Prague):",
        embedded.len()
    );
    println!("  {:<36} {:>5} {:>10} {:>10}", "call", "sent", "min", "max");
    for (call, (n, min, max)) in &calls {
        println!("  {call:<36} {n:>5} {min:>10} {max:>10}");
    }
    match &anvil {
        Some(a) => {
            let same =
                a.len() == embedded.len() && a.iter().zip(&embedded).all(|(x, y)| x.1 == y.1);
            println!(
                "anvil: the same {} transactions, identical gas for each: {same}",
                a.len()
            );
        }
        None => println!("anvil: not found, embedded EVM only"),
    }

    let d =
        conformance::measure_dispute(Arc::new(Revm::new()), &accounts, 1_000_000, 777_777).await?;
    println!(
        "\nfull dispute over a {}-step log (the node forged step 777,777; challenger wins):",
        d.steps
    );
    println!("  challenge                       {:>9}", d.challenge);
    for (i, (node, challenger)) in d.rounds.iter().enumerate() {
        println!(
            "  round {:>2}: node {node:>6}, challenger {challenger:>6}  {:>9}",
            i + 1,
            node + challenger
        );
    }
    println!("  reveal (record and two proofs)  {:>9}", d.reveal);
    for v in &d.votes {
        println!("  referee vote                    {v:>9}");
    }
    println!("  resolve (slash, pay challenger) {:>9}", d.resolve);
    let rounds: u64 = d.rounds.iter().map(|(n, c)| n + c).sum();
    println!(
        "  bisection, {} rounds          {rounds:>9}",
        d.rounds.len()
    );
    println!(
        "  total, challenge to slashing    {:>9}  (budget < 2,500,000)",
        d.total()
    );
    Ok(())
}
