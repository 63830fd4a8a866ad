//! Benches of oai-rag: embedding throughput of all-MiniLM-L6-v2 on this machine's CPU, on real
//! sentences (CPython's pydoc topics from `OAI_TEXT`, else generated ones), per batch size.
//! Needs the model files (`OAI_MINILM`, see `scripts/fetch_models.sh`); skips without them.
//!
//! Run: `cargo bench -p oai-benches --bench rag`

use oai_rag::MiniLm;
use std::time::Instant;

fn sentences(n: usize) -> Vec<String> {
    let text = std::env::var("OAI_TEXT")
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let mut out: Vec<String> = match text {
        Some(t) => t
            .split(['.', '\n'])
            .map(str::trim)
            .filter(|s| s.split_whitespace().count() >= 5)
            .map(String::from)
            .take(n)
            .collect(),
        None => Vec::new(),
    };
    let mut i = 0;
    while out.len() < n {
        out.push(format!(
            "Sentence number {i} talks about open data, logged training and retrieval."
        ));
        i += 1;
    }
    out
}

fn main() {
    let Ok(dir) = std::env::var("OAI_MINILM") else {
        println!("skipped: set OAI_MINILM (scripts/fetch_models.sh)");
        return;
    };
    let model = MiniLm::load(&dir, &oai_rag::candle::Device::Cpu).expect("model");
    let all = sentences(512);
    let words: usize = all.iter().map(|s| s.split_whitespace().count()).sum();
    println!(
        "\nembedding throughput, all-MiniLM-L6-v2, {} sentences ({:.1} words on average)",
        all.len(),
        words as f64 / all.len() as f64
    );
    println!("{:>6} {:>12}", "batch", "sentences/s");
    for batch in [1, 8, 32, 128] {
        model.embed_blocking(&all[..batch]).expect("warm-up");
        let start = Instant::now();
        for chunk in all.chunks(batch) {
            model.embed_blocking(chunk).expect("embed");
        }
        let rate = all.len() as f64 / start.elapsed().as_secs_f64();
        println!("{batch:>6} {rate:>12.1}");
    }
}
