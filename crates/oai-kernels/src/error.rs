//! The one error of the kernels.

/// What a kernel call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// candle refused an op: shapes, dtypes or devices that do not fit.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Sizes or constants a kernel cannot take (an odd RoPE head width, a base of 1).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
