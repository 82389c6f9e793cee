use std::fmt;

/// What can go wrong in the store. A database failure is never reported as "not found": callers
/// must be able to tell an outage from an absence.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing a change refers to does not exist (e.g. a grant on an unknown ledger).
    #[error("{0} not found")]
    NotFound(String),
    /// The change would break a uniqueness rule (an organisation or MSN already there).
    #[error("{0} already exists")]
    Conflict(String),
    /// The change is not allowed by the domain's rules.
    #[error("{0}")]
    Invalid(String),
    /// Stored data that does not parse: a bug or a hand-edited database.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    #[error("database error")]
    Database(#[source] DbError),
}

/// The backend's own error, kept opaque so callers cannot match on backend details.
pub struct DbError(pub Box<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(DbError(Box::new(e)))
    }
}

impl From<ledgerport_core::ParseError> for StoreError {
    fn from(e: ledgerport_core::ParseError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
