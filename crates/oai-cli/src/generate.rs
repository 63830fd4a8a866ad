//! `oai generate`: text from a Llama-family GGUF model on this machine, streamed as it comes.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use oai::train::gguf::{generator, TextStream};
use oai::train::model::Sampling;
use oai::train::Kernels;

/// Arguments of `oai generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// The prompt.
    prompt: String,
    /// The model: a Llama-family GGUF file (SmolLM2-135M-Instruct: `scripts/fetch_models.sh`
    /// unpacks it and prints `OAI_SMOLLM2`).
    #[arg(long, env = "OAI_SMOLLM2")]
    gguf: PathBuf,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Draw each token at this temperature instead of taking the most likely one.
    #[arg(long)]
    temperature: Option<f64>,
    /// The seed the draws derive from (with `--temperature`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Send the prompt as it is, not as a user's chat turn (ChatML, when the model's
    /// vocabulary has its markers).
    #[arg(long)]
    raw: bool,
}

/// Generate and print the answer as it comes; the speed goes to stderr.
pub fn run(args: GenerateArgs) -> Result<()> {
    let file = std::fs::read(&args.gguf)
        .with_context(|| format!("reading the model {}", args.gguf.display()))?;
    let (generator, tokenizer) = generator(&file, Kernels::Verifiable)?;
    let (prompt, stop) = tokenizer.prompt(&args.prompt, !args.raw)?;
    let sampling = Sampling::new(args.temperature, args.seed);
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut text = TextStream::until(&stop);
    let mut failed = None;
    let answer = generator.generate(&prompt, args.max_tokens, sampling, &stop, |t| {
        match text.push(&tokenizer, t) {
            Ok(piece) => {
                let _ = out.write_all(piece.as_bytes());
                let _ = out.flush();
                ControlFlow::Continue(())
            }
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    writeln!(out)?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} prompt tokens, {} generated in {seconds:.2} s ({:.1} tokens/s)",
        prompt.len(),
        answer.len(),
        answer.len() as f64 / seconds
    );
    Ok(())
}
