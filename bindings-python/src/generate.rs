//! `oai.Generator`: a Llama-family GGUF model answering on this machine, its text streamed by
//! an iterator (`oai.TextStream`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use oai::train::gguf::{self, Tokenizer};
use oai::train::model::{Generation, LlamaGenerator, QuantizedWeights, Sampling};
use oai::train::Kernels;
use pyo3::prelude::*;

use crate::errors::{self, Kind};

/// A Llama-family model from a GGUF file (e.g. SmolLM2-135M-Instruct), its tokenizer, on the
/// verifiable kernels: a greedy answer is the same on every machine of a class.
#[pyclass(frozen, module = "oai")]
pub struct Generator {
    model: Arc<LlamaGenerator<QuantizedWeights>>,
    tokenizer: Arc<Tokenizer>,
}

#[pymethods]
impl Generator {
    /// Load the GGUF file at `path`.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let bytes = py
            .detach(|| std::fs::read(&path))
            .map_err(|e| errors::error(Kind::NotFound, format!("{}: {e}", path.display())))?;
        let (model, tokenizer) = py
            .detach(|| gguf::generator(&bytes, Kernels::Verifiable).map_err(Box::new))
            .map_err(|e| errors::train(*e))?;
        Ok(Self {
            model: Arc::new(model),
            tokenizer: Arc::new(tokenizer),
        })
    }

    /// Token ids of `text`.
    fn encode(&self, text: &str) -> PyResult<Vec<u32>> {
        self.tokenizer.encode(text).map_err(errors::train)
    }

    /// The text of token ids.
    fn decode(&self, ids: Vec<u32>) -> PyResult<String> {
        self.tokenizer.decode(&ids).map_err(errors::train)
    }

    /// The model's sizes (the job spec's `llama` entry) as a dict.
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::train::json_value(py, self.model.spec())
    }

    /// An iterator over the answer to `prompt`, piece by piece as the tokens come: a user's
    /// chat turn when the model chats in ChatML (`chat=False` sends the prompt as it is),
    /// greedy unless given a `temperature` (draws from `seed`), at most `max_tokens` tokens.
    #[pyo3(signature = (prompt, max_tokens = 128, temperature = None, seed = 0, chat = true))]
    fn generate(
        &self,
        prompt: &str,
        max_tokens: usize,
        temperature: Option<f64>,
        seed: u64,
        chat: bool,
    ) -> PyResult<TextStream> {
        let (ids, stop) = self.tokenizer.prompt(prompt, chat).map_err(errors::train)?;
        let sampling = Sampling::new(temperature, seed);
        let generation = self
            .model
            .start(&ids, max_tokens, sampling, &stop)
            .map_err(errors::train)?;
        Ok(TextStream {
            model: self.model.clone(),
            tokenizer: self.tokenizer.clone(),
            state: Mutex::new((generation, gguf::TextStream::until(&stop))),
        })
    }

    fn __repr__(&self) -> String {
        let s = self.model.spec();
        format!(
            "<oai.Generator llama {} layers, width {}, vocab {}>",
            s.layers, s.d_model, s.vocab
        )
    }
}

/// The pieces of one answer's text, as `Generator.generate` makes them.
#[pyclass(frozen, module = "oai")]
pub struct TextStream {
    model: Arc<LlamaGenerator<QuantizedWeights>>,
    tokenizer: Arc<Tokenizer>,
    state: Mutex<(Generation, gguf::TextStream)>,
}

#[pymethods]
impl TextStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next piece of text (tokens that only begin a character wait for the rest).
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| errors::error(Kind::Oai, "a generation panicked"))?;
        let (generation, text) = &mut *state;
        py.detach(|| loop {
            let Some(token) = generation.next_token(&self.model).map_err(Box::new)? else {
                return Ok(None);
            };
            let piece = text.push(&self.tokenizer, token).map_err(Box::new)?;
            if !piece.is_empty() {
                return Ok(Some(piece));
            }
        })
        .map_err(|e: Box<oai::train::Error>| errors::train(*e))
    }
}
