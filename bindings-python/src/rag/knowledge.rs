//! `oai.Knowledge`: a dataset's passages with their index and embedder, searched and answered
//! from with citations (`oai.Passage`, `oai.Answer`).

use std::collections::BTreeMap;
use std::sync::Arc;

use oai::data::dataset::Record;
use oai::rag::federation::{KnowledgePeer, PeerHit, PeerQuery};
use oai::rag::{Extractive, Generator};
use pyo3::prelude::*;

use crate::errors;
use crate::runtime::block_on;

use super::{check_k, filter, AnyEmbedder};

/// A retrieved passage: its record's CID, its text, its score and its entry's metadata.
#[pyclass(frozen, module = "oai", get_all)]
pub struct Passage {
    /// The passage record's CID (checked against its text).
    source: String,
    /// The text.
    text: String,
    /// Dot product with the question's embedding.
    score: f32,
    /// The entry's metadata.
    meta: BTreeMap<String, String>,
}

#[pymethods]
impl Passage {
    fn __repr__(&self) -> String {
        let short: String = self.text.chars().take(40).collect();
        format!(
            "<oai.Passage {} score={:.4} {short:?}>",
            self.source, self.score
        )
    }
}

/// An answer and the CIDs of the passages it was made from.
#[pyclass(frozen, module = "oai", get_all)]
pub struct Answer {
    /// The answer text (empty when no passage shares a word with the question).
    text: String,
    /// CIDs of the passages the answer used.
    citations: Vec<String>,
    /// The passages retrieved, best first.
    passages: Vec<Py<Passage>>,
}

#[pymethods]
impl Answer {
    fn __str__(&self) -> String {
        self.text.clone()
    }

    fn __repr__(&self) -> String {
        format!("<oai.Answer {:?} citing {:?}>", self.text, self.citations)
    }
}

/// A dataset's passages with their index and embedder, ready to search and answer
/// (`store.knowledge(dataset, embedder, index)`).
#[pyclass(frozen, module = "oai")]
pub struct Knowledge {
    pub(super) peer: Arc<dyn KnowledgePeer>,
    pub(super) embedder: AnyEmbedder,
    pub(super) dataset: String,
}

/// A passage record's text (`InvalidInput` for a record that is not text).
fn passage_text(hit: &PeerHit) -> oai::rag::Result<String> {
    match Record::decode(&hit.record)? {
        Record::Text(t) => Ok(t),
        other => Err(oai::rag::Error::InvalidInput(format!(
            "passage {} is not text: {other:?}",
            hit.source
        ))),
    }
}

impl Knowledge {
    /// The `k` best hits for `question` with their texts.
    async fn retrieve(
        &self,
        question: &str,
        k: usize,
        filter: Option<oai::rag::Filter>,
    ) -> oai::rag::Result<Vec<(PeerHit, String)>> {
        if question.trim().is_empty() {
            return Err(oai::rag::Error::InvalidInput("empty question".into()));
        }
        let vector = self
            .embedder
            .embed(&[question.to_string()])
            .await?
            .pop()
            .unwrap_or_default();
        let hits = self.peer.query(&PeerQuery { vector, k, filter }).await?;
        hits.into_iter()
            .map(|h| {
                let text = passage_text(&h)?;
                Ok((h, text))
            })
            .collect()
    }
}

fn to_python(py: Python<'_>, found: Vec<(PeerHit, String)>) -> PyResult<Vec<Py<Passage>>> {
    found
        .into_iter()
        .map(|(h, text)| {
            Py::new(
                py,
                Passage {
                    source: h.source.to_string(),
                    text,
                    score: h.score,
                    meta: h.meta,
                },
            )
        })
        .collect()
}

#[pymethods]
impl Knowledge {
    /// The `k` passages best matching `question` whose metadata has every key/value of
    /// `where`, best first.
    #[pyo3(signature = (question, k = 3, r#where = None))]
    fn search(
        slf: Py<Self>,
        py: Python<'_>,
        question: String,
        k: usize,
        r#where: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Passage>>> {
        check_k(k)?;
        let (f, me) = (filter(r#where)?, slf.clone_ref(py));
        let found = block_on(py, async move { me.get().retrieve(&question, k, f).await })?
            .map_err(errors::rag)?;
        to_python(py, found)
    }

    /// Answer `question` from the `k` best passages (the sentence sharing the most words with
    /// it), citing the passage it came from.
    #[pyo3(signature = (question, k = 3, r#where = None))]
    fn ask(
        slf: Py<Self>,
        py: Python<'_>,
        question: String,
        k: usize,
        r#where: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Answer> {
        check_k(k)?;
        let (f, me) = (filter(r#where)?, slf.clone_ref(py));
        let (found, answer) = block_on(py, async move {
            let found = me.get().retrieve(&question, k, f).await?;
            let passages: Vec<oai::rag::Passage> = found
                .iter()
                .map(|(h, text)| oai::rag::Passage {
                    source: h.source,
                    text: text.clone(),
                })
                .collect();
            let answer = Extractive.answer(&question, &passages).await?;
            Ok::<_, oai::rag::Error>((found, answer))
        })?
        .map_err(errors::rag)?;
        Ok(Answer {
            text: answer.text,
            citations: answer.citations.iter().map(ToString::to_string).collect(),
            passages: to_python(py, found)?,
        })
    }

    /// The dataset version whose passages these are (its manifest CID).
    #[getter]
    fn dataset(&self) -> &str {
        &self.dataset
    }

    fn __repr__(&self) -> String {
        format!("<oai.Knowledge of {}>", self.dataset)
    }
}
