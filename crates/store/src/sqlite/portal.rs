//! The portal's part of the SQLite store: users, sessions and failed sign-ins
//! (migration `0004_portal.sql`). The `Store` methods of the `// --- portal ---` section call
//! these.

use super::{SqliteStore, constraint};
use crate::{
    Actor, NewPartner, NewPortalUser, PortalRole, PortalSession, PortalUser, Result,
    SignInFailures, StoreError,
};
use jiff::Timestamp;
use ledgerport_core::entry::wire_time;
use ledgerport_core::world::{Partner, RowId};
use sqlx::{Sqlite, Transaction};

/// A `portal_users` row; the PostgreSQL backend reads the same columns.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    email: String,
    role: String,
    merchant_id: Option<i64>,
    partner_id: Option<i64>,
    password_hash: String,
    created_at: String,
}

pub(crate) fn ts(s: &str) -> Result<Timestamp> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("timestamp {s}")))
}

impl UserRow {
    pub(crate) fn into_domain(self) -> Result<PortalUser> {
        let role = match (self.role.as_str(), self.merchant_id, self.partner_id) {
            ("merchant", Some(m), None) => PortalRole::Merchant(m),
            ("partner", None, Some(p)) => PortalRole::Partner(p),
            ("operator", None, None) => PortalRole::Operator,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "portal user {} role {}",
                    self.id, self.role
                )));
            }
        };
        Ok(PortalUser {
            id: self.id,
            email: self.email,
            role,
            password_hash: self.password_hash,
            created_at: ts(&self.created_at)?,
        })
    }
}

/// Emails are compared as typed, minus surrounding blanks and case.
pub(crate) fn normal_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl SqliteStore {
    async fn insert_portal_user(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO portal_users (email, role, merchant_id, partner_id, password_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&email)
        .bind(u.role.as_str())
        .bind(merchant)
        .bind(partner)
        .bind(&u.password_hash)
        .bind(self.now())
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| constraint(e, || format!("portal user {email}")))?;
        let of = match u.role {
            PortalRole::Merchant(m) => format!(" of merchant {m}"),
            PortalRole::Partner(p) => format!(" of partner {p}"),
            PortalRole::Operator => String::new(),
        };
        self.audit(
            tx,
            by,
            "portal-user.create",
            &format!("portal user {id}"),
            &format!("{} {email}{of}", u.role.as_str()),
        )
        .await?;
        Ok(id)
    }

    pub(super) async fn portal_create_user(
        &self,
        by: &Actor,
        u: NewPortalUser,
    ) -> Result<PortalUser> {
        let _w = self.write_lock.lock().await;
        let mut tx = self.writer.begin().await?;
        let id = self.insert_portal_user(&mut tx, by, &u).await?;
        tx.commit().await?;
        drop(_w);
        self.portal_get_user(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("portal user {id}")))
    }

    pub(super) async fn portal_apply_as_partner(
        &self,
        by: &Actor,
        p: NewPartner,
        email: &str,
        password_hash: &str,
    ) -> Result<(Partner, PortalUser)> {
        let _w = self.write_lock.lock().await;
        let mut tx = self.writer.begin().await?;
        let partner_id = self.insert_partner(&mut tx, by, &p, " applied").await?;
        let user = NewPortalUser {
            email: email.to_owned(),
            role: PortalRole::Partner(partner_id),
            password_hash: password_hash.to_owned(),
        };
        let user_id = self.insert_portal_user(&mut tx, by, &user).await?;
        tx.commit().await?;
        drop(_w);
        use crate::Store;
        let partner = self
            .partner(partner_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("partner {partner_id}")))?;
        let user = self
            .portal_get_user(user_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("portal user {user_id}")))?;
        Ok((partner, user))
    }

    pub(super) async fn portal_get_user(&self, id: RowId) -> Result<Option<PortalUser>> {
        let row: Option<UserRow> = sqlx::query_as("SELECT * FROM portal_users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(UserRow::into_domain).transpose()
    }

    pub(super) async fn portal_user_with_email(&self, email: &str) -> Result<Option<PortalUser>> {
        let row: Option<UserRow> = sqlx::query_as("SELECT * FROM portal_users WHERE email = ?")
            .bind(normal_email(email))
            .fetch_optional(&self.pool)
            .await?;
        row.map(UserRow::into_domain).transpose()
    }

    pub(super) async fn portal_all_users(&self) -> Result<Vec<PortalUser>> {
        let rows: Vec<UserRow> = sqlx::query_as("SELECT * FROM portal_users ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(UserRow::into_domain).collect()
    }

    pub(super) async fn portal_create_session(
        &self,
        user: RowId,
        token_hash: [u8; 32],
        csrf_token: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        let _w = self.write_lock.lock().await;
        sqlx::query(
            "INSERT INTO portal_sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash.as_slice())
        .bind(user)
        .bind(csrf_token)
        .bind(self.now())
        .bind(wire_time(expires_at))
        .execute(&self.writer)
        .await
        .map_err(|e| constraint(e, || format!("session of portal user {user}")))?;
        Ok(())
    }

    pub(super) async fn portal_session(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<PortalSession>> {
        let row: Option<(i64, String, String, String)> = sqlx::query_as(
            "SELECT user_id, csrf_token, created_at, expires_at FROM portal_sessions \
             WHERE token_hash = ? AND expires_at > ?",
        )
        .bind(token_hash.as_slice())
        .bind(self.now())
        .fetch_optional(&self.pool)
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

    pub(super) async fn portal_delete_session(&self, token_hash: [u8; 32]) -> Result<bool> {
        let _w = self.write_lock.lock().await;
        let n = sqlx::query("DELETE FROM portal_sessions WHERE token_hash = ?")
            .bind(token_hash.as_slice())
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    pub(super) async fn portal_record_failure(&self, email: &str) -> Result<SignInFailures> {
        let _w = self.write_lock.lock().await;
        let now = self.now();
        sqlx::query(
            "INSERT INTO portal_sign_in_failures (email, count, last_at) VALUES (?1, 1, ?2) \
             ON CONFLICT (email) DO UPDATE SET count = count + 1, last_at = ?2",
        )
        .bind(normal_email(email))
        .bind(&now)
        .execute(&self.writer)
        .await?;
        drop(_w);
        self.portal_failures(email).await
    }

    pub(super) async fn portal_failures(&self, email: &str) -> Result<SignInFailures> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT count, last_at FROM portal_sign_in_failures WHERE email = ?")
                .bind(normal_email(email))
                .fetch_optional(&self.pool)
                .await?;
        match row {
            None => Ok(SignInFailures::default()),
            Some((count, last)) => Ok(SignInFailures {
                count: u32::try_from(count).unwrap_or(u32::MAX),
                last_at: Some(ts(&last)?),
            }),
        }
    }

    pub(super) async fn portal_clear_failures(&self, email: &str) -> Result<()> {
        let _w = self.write_lock.lock().await;
        sqlx::query("DELETE FROM portal_sign_in_failures WHERE email = ?")
            .bind(normal_email(email))
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
