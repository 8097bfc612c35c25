//! `BenchError`: why a run could not complete.

/// A failed run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A connection failed (refused, closed, or an error from the broker).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The run could not be set up as asked.
    #[error("{0}")]
    Setup(String),
    /// A load thread panicked.
    #[error("a load thread failed: {0}")]
    Thread(String),
}
