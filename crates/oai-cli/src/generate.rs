//! `oai generate`: text from a Llama-family GGUF model on this machine, streamed as it comes.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use oai::core::Seed;
use oai::train::gguf::{read_llama, Tokenizer};
use oai::train::model::{LlamaGenerator, Sampling};
use oai::train::{Kernels, LlamaSpec, Model, ModelSpec, Params};

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

/// The ChatML markers, as SmolLM2 and Qwen write a chat.
const TURN_START: &str = "<|im_start|>";
const TURN_END: &str = "<|im_end|>";

/// Generate and print the answer as it comes; the speed goes to stderr.
pub fn run(args: GenerateArgs) -> Result<()> {
    let file = std::fs::read(&args.gguf)
        .with_context(|| format!("reading the model {}", args.gguf.display()))?;
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let (spec, tensors) = read_llama(&file)?;
    let defs = Model::new(&ModelSpec::Llama(spec.clone())).param_defs();
    let params = Params::from_tensors(&defs, tensors, &oai::train::candle::Device::Cpu)?;
    let marker = |m: &str| -> Result<Option<u32>> {
        let ids = tokenizer.encode(m)?;
        Ok((ids.len() == 1).then(|| ids[0]))
    };
    let chat = match (args.raw, marker(TURN_START)?, marker(TURN_END)?) {
        (false, Some(_), Some(end)) => Some(end),
        _ => None,
    };
    let text = match chat {
        Some(_) => format!(
            "{TURN_START}user\n{}{TURN_END}\n{TURN_START}assistant\n",
            args.prompt
        ),
        None => args.prompt.clone(),
    };
    let prompt = tokenizer.encode(&text)?;
    let context = prompt.len().saturating_add(args.max_tokens);
    let spec = LlamaSpec {
        context: context.min(spec.context),
        ..spec
    };
    let generator = LlamaGenerator::new(spec, params, Kernels::Verifiable)?;
    let sampling = match args.temperature {
        Some(temperature) => Sampling::Temperature {
            temperature,
            seed: Seed::from_u64(args.seed),
        },
        None => Sampling::Greedy,
    };
    let stop: Vec<u32> = chat.into_iter().collect();
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let (mut tokens, mut printed) = (Vec::new(), 0);
    let answer = generator.generate(&prompt, args.max_tokens, sampling, &stop, |t| {
        if stop.contains(&t) {
            return ControlFlow::Continue(());
        }
        tokens.push(t);
        // print what the tokens so far add to the text (a character may take two tokens)
        if let Ok(text) = tokenizer.decode(&tokens) {
            if text.len() > printed && text.is_char_boundary(printed) && !text.ends_with('\u{fffd}')
            {
                let _ = out.write_all(&text.as_bytes()[printed..]);
                let _ = out.flush();
                printed = text.len();
            }
        }
        ControlFlow::Continue(())
    })?;
    let text = tokenizer.decode(&tokens)?;
    writeln!(out, "{}", &text[printed.min(text.len())..])?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} prompt tokens, {} generated in {seconds:.2} s ({:.1} tokens/s)",
        prompt.len(),
        answer.len(),
        answer.len() as f64 / seconds
    );
    Ok(())
}
