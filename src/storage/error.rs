//! Failures of the embedded store. `storage/` knows nothing of HTTP; `platform::error` maps
//! these to statuses.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite itself failed (disk full, I/O error, corrupt file …).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The batch transaction could not commit (disk full, I/O error …).
    #[error("commit failed: {0}")]
    Commit(String),
    /// The writer thread is gone (the store is shutting down).
    #[error("the store is closed")]
    Closed,
    /// Input the store refuses: a key too long, a value too large, a bad cursor …
    #[error("{0}")]
    Invalid(String),
    /// A size limit was exceeded.
    #[error("{0}")]
    TooLarge(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing is in a state that does not allow the operation.
    #[error("{0}")]
    Conflict(String),
    /// A stored value could not be decoded (should never happen; means corruption).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Another process holds the data directory.
    #[error("{0}")]
    Locked(String),
    /// The store's own machinery failed (a thread could not start or died).
    #[error("{0}")]
    Internal(String),
}

impl StorageError {
    /// An error a caller's input caused (as opposed to a failure of the store).
    pub fn invalid(message: impl Into<String>) -> Self {
        StorageError::Invalid(message.into())
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
