//! The portal's shapes: people who sign in, their sessions, and failed sign-ins.

use jiff::Timestamp;
use ledgerport_core::world::RowId;

/// What a portal user is, and so what it may see: one organisation's, one partner's, or the
/// operator's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalRole {
    /// A merchant user: belongs to one organisation (merchant row).
    Merchant(RowId),
    /// A partner user: belongs to one partner.
    Partner(RowId),
    Operator,
}

impl PortalRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PortalRole::Merchant(_) => "merchant",
            PortalRole::Partner(_) => "partner",
            PortalRole::Operator => "operator",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPortalUser {
    /// Compared and kept lowercased.
    pub email: String,
    pub role: PortalRole,
    /// The password's Argon2id hash as a PHC string; never the password.
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalUser {
    pub id: RowId,
    pub email: String,
    pub role: PortalRole,
    pub password_hash: String,
    pub created_at: Timestamp,
}

/// A signed-in browser. The store knows the session by the SHA-256 of its token only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub user_id: RowId,
    /// The token every form of this session must carry back.
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Failed sign-ins for one email since its last successful one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignInFailures {
    pub count: u32,
    pub last_at: Option<Timestamp>,
}
