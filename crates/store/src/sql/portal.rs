//! [`PortalStore`] on SQL: users, sessions and failed sign-ins (migration `0004_portal.sql`).
//! Nothing here needs a lock of its own: a taken email is the unique index's to refuse, and a
//! failed sign-in is counted by one upsert that returns the new count, so processes sharing the
//! database never lose one.

use super::{Dialect, SqlStore, WriteTx, args, constraint};
use crate::rows::{UserRow, ts};
use crate::{
    Actor, NewMail, NewPartner, NewPortalUser, PortalRole, PortalSession, PortalStore, PortalUser,
    Result, SignInFailures, StoreError, WorldStore,
};
use async_trait::async_trait;
use jiff::Timestamp;
use ledgerport_core::entry::wire_time;
use ledgerport_core::world::{Partner, RowId};

/// Emails are compared as typed, minus surrounding blanks and case.
fn normal_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl<DB: Dialect> SqlStore<DB> {
    async fn insert_portal_user(
        &self,
        tx: &mut WriteTx<DB>,
        by: &Actor,
        u: &NewPortalUser,
    ) -> Result<RowId> {
        let email = normal_email(&u.email);
        if email.is_empty() {
            return Err(StoreError::Invalid("email: must not be empty".into()));
        }
        let (merchant, partner) = match u.role {
            PortalRole::Merchant(m) => (Some(m), None),
            PortalRole::Partner(p) => (None, Some(p)),
            PortalRole::Operator => (None, None),
        };
        let now = self.now();
        let (id,): (i64,) = tx
            .one(
                "INSERT INTO portal_users (email, role, merchant_id, partner_id, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                args![&email, u.role.as_str(), merchant, partner, &u.password_hash, now.as_str()],
            )
            .await
            .map_err(|e| constraint(e, || format!("portal user {email}")))?;
        let of = match u.role {
            PortalRole::Merchant(m) => format!(" of merchant {m}"),
            PortalRole::Partner(p) => format!(" of partner {p}"),
            PortalRole::Operator => String::new(),
        };
        let detail = format!("{} {email}{of}", u.role.as_str());
        tx.audit(
            &now,
            by,
            "portal-user.create",
            &format!("portal user {id}"),
            &detail,
        )
        .await?;
        Ok(id)
    }

    async fn require_user(&self, id: RowId) -> Result<PortalUser> {
        self.portal_user(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("portal user {id}")))
    }
}

#[async_trait]
impl<DB: Dialect> PortalStore for SqlStore<DB> {
    async fn create_portal_user(&self, by: &Actor, u: NewPortalUser) -> Result<PortalUser> {
        let mut tx = self.begin().await?;
        let id = self.insert_portal_user(&mut tx, by, &u).await?;
        tx.commit().await?;
        self.require_user(id).await
    }

    async fn apply_as_partner(
        &self,
        by: &Actor,
        p: NewPartner,
        email: &str,
        password_hash: &str,
        mails: &[NewMail],
    ) -> Result<(Partner, PortalUser)> {
        // One transaction: a taken email rolls the partner back with it (the transaction is
        // dropped uncommitted on the error), and the mails exist exactly when the application
        // does.
        let mut tx = self.begin().await?;
        let partner_id = self.insert_partner(&mut tx, by, &p, " applied").await?;
        let user = NewPortalUser {
            email: email.to_owned(),
            role: PortalRole::Partner(partner_id),
            password_hash: password_hash.to_owned(),
        };
        let user_id = self.insert_portal_user(&mut tx, by, &user).await?;
        let now = self.now();
        for mail in mails {
            tx.enqueue(&now, mail).await?;
        }
        tx.commit().await?;
        let partner = self
            .partner(partner_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("partner {partner_id}")))?;
        Ok((partner, self.require_user(user_id).await?))
    }

    async fn portal_user(&self, id: RowId) -> Result<Option<PortalUser>> {
        let row: Option<UserRow> = self
            .opt("SELECT * FROM portal_users WHERE id = $1", args![id])
            .await?;
        row.map(UserRow::into_domain).transpose()
    }

    async fn portal_user_by_email(&self, email: &str) -> Result<Option<PortalUser>> {
        let row: Option<UserRow> = self
            .opt(
                "SELECT * FROM portal_users WHERE email = $1",
                args![normal_email(email)],
            )
            .await?;
        row.map(UserRow::into_domain).transpose()
    }

    async fn portal_users(&self) -> Result<Vec<PortalUser>> {
        let rows: Vec<UserRow> = self
            .all("SELECT * FROM portal_users ORDER BY id", args![])
            .await?;
        rows.into_iter().map(UserRow::into_domain).collect()
    }

    async fn create_session(
        &self,
        user: RowId,
        token_hash: [u8; 32],
        csrf_token: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.write_one(
            "INSERT INTO portal_sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            args![
                token_hash.as_slice(),
                user,
                csrf_token,
                self.now(),
                wire_time(expires_at),
            ],
        )
        .await
        .map_err(|e| constraint(e, || format!("session of portal user {user}")))?;
        Ok(())
    }

    async fn session(&self, token_hash: [u8; 32]) -> Result<Option<PortalSession>> {
        // Times are wire-form text, which sorts as time does (0001_world.sql).
        let row: Option<(i64, String, String, String)> = self
            .opt(
                "SELECT user_id, csrf_token, created_at, expires_at FROM portal_sessions \
                 WHERE token_hash = $1 AND expires_at > $2",
                args![token_hash.as_slice(), self.now()],
            )
            .await?;
        row.map(|(user_id, csrf_token, created, expires)| {
            Ok(PortalSession {
                user_id,
                csrf_token,
                created_at: ts(&created)?,
                expires_at: ts(&expires)?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: [u8; 32]) -> Result<bool> {
        let n = self
            .write_one(
                "DELETE FROM portal_sessions WHERE token_hash = $1",
                args![token_hash.as_slice()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn record_sign_in_failure(&self, email: &str) -> Result<SignInFailures> {
        // The upsert returns the new count itself: a second query could see another process's
        // failure recorded in between.
        let row: Option<(i64, String)> = self
            .write_opt(
                "INSERT INTO portal_sign_in_failures AS f (email, count, last_at) VALUES ($1, 1, $2) \
                 ON CONFLICT (email) DO UPDATE SET count = f.count + 1, last_at = $2 \
                 RETURNING count, last_at",
                args![normal_email(email), self.now()],
            )
            .await?;
        let (count, last) = row
            .ok_or_else(|| StoreError::Corrupt("sign-in failure upsert returned no row".into()))?;
        Ok(SignInFailures {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            last_at: Some(ts(&last)?),
        })
    }

    async fn sign_in_failures(&self, email: &str) -> Result<SignInFailures> {
        let row: Option<(i64, String)> = self
            .opt(
                "SELECT count, last_at FROM portal_sign_in_failures WHERE email = $1",
                args![normal_email(email)],
            )
            .await?;
        match row {
            None => Ok(SignInFailures::default()),
            Some((count, last)) => Ok(SignInFailures {
                count: u32::try_from(count).unwrap_or(u32::MAX),
                last_at: Some(ts(&last)?),
            }),
        }
    }

    async fn clear_sign_in_failures(&self, email: &str) -> Result<()> {
        self.write_one(
            "DELETE FROM portal_sign_in_failures WHERE email = $1",
            args![normal_email(email)],
        )
        .await?;
        Ok(())
    }
}
