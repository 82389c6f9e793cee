//! A portal notification as the store holds it.

use jiff::Timestamp;
use ledgerport_core::world::RowId;

/// What one portal user has been told: a grant created, changed, removed, about to expire or
/// expired (kinds from [`ledgerport_core::notices::GrantChange::kind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: RowId,
    /// The portal user it is for.
    pub user_id: RowId,
    pub kind: String,
    pub text: String,
    /// The portal page where the user sees what it is about.
    pub link: Option<String>,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}
