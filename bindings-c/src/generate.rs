//! Generation with a Llama-family GGUF model (`oai_model`), the answer's text handed to a
//! callback piece by piece as it comes.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ops::ControlFlow;
use std::sync::Arc;

use oai::train::gguf::{self, TextStream, Tokenizer};
use oai::train::model::{LlamaGenerator, QuantizedWeights, Sampling};
use oai::train::Kernels;

use crate::buffers::{str_arg, Out};
use crate::handles::{self, Object};
use crate::status::{call, oai_status, Error, Result};

/// A Llama-family model loaded from a GGUF file, with its tokenizer.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct oai_model {
    _private: [u8; 0],
}

/// What an `oai_model` handle holds.
pub struct ModelHandle {
    generator: LlamaGenerator<QuantizedWeights>,
    tokenizer: Tokenizer,
}

/// Called with each piece of an answer's text (NUL-terminated UTF-8, valid during the call)
/// and the `user` pointer given to [`oai_generate`], on the calling thread; a nonzero return
/// stops the generation.
#[allow(non_camel_case_types)]
pub type oai_text_callback =
    Option<unsafe extern "C" fn(piece: *const c_char, user: *mut c_void) -> c_int>;

fn model_arg(m: *const oai_model) -> Result<Arc<ModelHandle>> {
    match handles::get(m, "model")? {
        Object::Model(m) => Ok(m),
        other => Err(handles::wrong_kind("model", "oai_model", &other)),
    }
}

/// Load the Llama-family GGUF file at `path` (e.g. SmolLM2-135M-Instruct) into `*out`, its
/// 4/8-bit weights kept in their blocks and computed with the verifiable kernels. A missing file is
/// `OAI_ERROR_NOT_FOUND`; a file that is not such a model `OAI_ERROR_INVALID_INPUT`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn oai_model_open(
    path: *const c_char,
    out: *mut *mut oai_model,
) -> oai_status {
    call(|| {
        // SAFETY: the caller's contract.
        let path = unsafe { str_arg(path, "path") }?;
        let out = Out::new(out, "out")?;
        let bytes = std::fs::read(path)
            .map_err(|e| Error::new(oai_status::OAI_ERROR_NOT_FOUND, format!("{path}: {e}")))?;
        let (generator, tokenizer) = gguf::generator(&bytes, Kernels::Verifiable)?;
        let model = Arc::new(ModelHandle {
            generator,
            tokenizer,
        });
        out.set(handles::insert(Object::Model(model)));
        Ok(())
    })
}

/// Free a model (NULL is ignored).
///
/// # Safety
/// Any pointer value is accepted; it is looked up, never dereferenced.
#[no_mangle]
pub unsafe extern "C" fn oai_model_free(model: *mut oai_model) -> oai_status {
    call(|| handles::free(model, "model", |o| matches!(o, Object::Model(_))))
}

/// Answer `prompt` with `model`: at most `max_tokens` tokens, greedy when `temperature` is 0
/// or less, else drawn at that temperature from `seed`; as a user's chat turn (ChatML) when
/// `chat` is nonzero and the model chats so. Each piece of text goes to `on_text` (may be
/// NULL) as it comes; the whole answer to `*answer_out` (may be NULL; free with
/// `oai_string_free`). A prompt and `max_tokens` beyond the model's context is
/// `OAI_ERROR_INVALID_INPUT`, before anything runs.
///
/// # Safety
/// `prompt` is NULL or a NUL-terminated string; `answer_out` is NULL or writable; `on_text`,
/// when not NULL, may be called with `user` from this thread.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn oai_generate(
    model: *const oai_model,
    prompt: *const c_char,
    max_tokens: usize,
    temperature: f64,
    seed: u64,
    chat: c_int,
    on_text: oai_text_callback,
    user: *mut c_void,
    answer_out: *mut *mut c_char,
) -> oai_status {
    call(|| {
        let m = model_arg(model)?;
        // SAFETY: the caller's contract.
        let prompt = unsafe { str_arg(prompt, "prompt") }?;
        let out = (!answer_out.is_null())
            .then(|| Out::new(answer_out, "answer_out"))
            .transpose()?;
        let (ids, stop) = m.tokenizer.prompt(prompt, chat != 0)?;
        let sampling = Sampling::new((temperature > 0.0).then_some(temperature), seed);
        let mut text = TextStream::until(&stop);
        let mut failed = None;
        m.generator
            .generate(&ids, max_tokens, sampling, &stop, |t| {
                if stop.contains(&t) {
                    return ControlFlow::Continue(());
                }
                let piece = match text.push(&m.tokenizer, t) {
                    Ok(piece) => piece,
                    Err(e) => {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                };
                match (on_text, piece.is_empty()) {
                    (Some(f), false) => {
                        let piece = CString::new(piece).unwrap_or_default();
                        // SAFETY: the caller's contract: `f` takes these arguments.
                        match unsafe { f(piece.as_ptr(), user) } {
                            0 => ControlFlow::Continue(()),
                            _ => ControlFlow::Break(()),
                        }
                    }
                    _ => ControlFlow::Continue(()),
                }
            })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        if let Some(out) = out {
            out.set_string(&text.text(&m.tokenizer)?);
        }
        Ok(())
    })
}
