//! The notifications page of merchant and partner users: what they have been told of grants and
//! access requests, newest first in pages, and marking them read (their own only; the store
//! checks the owner).

use super::auth::SignedIn;
use super::templates::{Layout, NOTIFICATIONS, NotificationRow, NotificationsPage};
use super::{PortalError, PostedForm, field, page, redirect_flash, show_time};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::Response;
use ledgerport_store::PortalRole;

/// Notifications per page.
const PAGE: u32 = 50;

#[derive(serde::Deserialize)]
pub struct PageQuery {
    /// Show those older than this notification id.
    before: Option<i64>,
}

/// Merchant and partner users are notified; anyone else is refused.
fn notified(who: &SignedIn) -> Result<(), PortalError> {
    match who.user.role {
        PortalRole::Merchant(_) | PortalRole::Partner(_) => Ok(()),
        PortalRole::Operator => Err(PortalError::Forbidden),
    }
}

pub async fn list(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<PageQuery>,
) -> Result<Response, PortalError> {
    notified(&who)?;
    let mut found = state
        .store
        .notifications(who.user.id, q.before, PAGE + 1)
        .await?;
    let more = found.len() > PAGE as usize;
    found.truncate(PAGE as usize);
    let older = if more {
        found.last().map(|n| n.id)
    } else {
        None
    };
    let rows = found
        .into_iter()
        .map(|n| NotificationRow {
            id: n.id,
            when: show_time(n.created_at),
            text: n.text,
            link: n.link,
            unread: n.read_at.is_none(),
        })
        .collect();
    Ok(page(
        who.flash.is_some(),
        &NotificationsPage {
            l: Layout::of(&who, NOTIFICATIONS),
            rows,
            unread: who.unread.unwrap_or(0),
            older,
        },
    ))
}

/// Marks one notification (`id`) or all (`id=all`) read.
pub async fn mark_read(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    notified(&who)?;
    match field(&pairs, "id").map(str::trim) {
        Some("all") => {
            let n = state.store.mark_all_notifications_read(who.user.id).await?;
            Ok(redirect_flash(
                NOTIFICATIONS,
                "ok",
                &format!("Marked {n} notifications read."),
            ))
        }
        Some(id) => {
            let id: i64 = id
                .parse()
                .map_err(|_| PortalError::BadRequest("id: must be a number or all".into()))?;
            // Another user's notification (or an unknown id) is not found, as it is to the
            // store: nothing tells whether it exists.
            if !state.store.mark_notification_read(who.user.id, id).await? {
                let own = state
                    .store
                    .notifications(who.user.id, Some(id + 1), 1)
                    .await?;
                if own.first().is_none_or(|n| n.id != id) {
                    return Err(PortalError::NotFound);
                }
            }
            Ok(redirect_flash(NOTIFICATIONS, "ok", "Marked read."))
        }
        None => Err(PortalError::BadRequest(
            "id: must be a number or all".into(),
        )),
    }
}
