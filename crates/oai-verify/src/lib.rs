//! Checking a training node's work.
//!
//! A node's result is two commitments (the log header and its last step record, as a chain
//! holds them, [`Submission`]); everything else is reached from them by content address and
//! checked on the way. A [`Verifier`] loads the log once, checks that it answers the job (spec,
//! dataset, step count), and replays what the [`Strategy`] asks for bit for bit:
//!
//! - [`Strategy::Sampling`]: `k` steps drawn from randomness the node could not know when it
//!   committed ([`audit_seed`]); [`sampling`] says what `k` buys against a node that forges a
//!   fraction of its steps, and what it costs, and chooses `k` and the checkpoint interval;
//! - [`Strategy::Full`]: every step, each checkpoint interval once, in parallel where cores
//!   allow.
//!
//! [`game`] plays the optimistic dispute on real logs: the node's and the challenger's
//! bisection moves from their logs and the referee's one-step judgement; [`agents`] are the
//! parties that play it over any chain and store, restartable from the chain's state.
//!
//! The answer is a [`Verdict`]: accepted, or rejected with a [`Fault`] naming the first bad
//! step, the field and the reason. The verifier's own trouble (a block nobody serves, a store
//! that lies, a compute class this machine cannot judge) is an [`Error`], never a verdict.

pub mod agents;
mod background;
mod error;
pub mod game;
mod keeper;
pub mod sampling;
mod submission;
mod verdict;
mod verifier;

pub use error::{Error, Result};
pub use sampling::{
    audit_seed, audit_seed_block, audit_seed_of, audit_steps, AuditSeed, Forgery, AUDIT_SEED_DELAY,
};
pub use submission::{cid_of, commitment, job_terms, submit_log, Submission, Windows};
pub use verdict::{Fault, Report, Strategy, Verdict};
pub use verifier::{fault_on_its_face, Verifier};
