//! The portal's part of the PostgreSQL store: users, sessions and failed sign-ins (migration
//! `0004_portal.sql`), with the SQLite backend's rules and rows (`sqlite/portal.rs`). The `Store`
//! methods of the `// --- portal ---` section call these. Nothing here needs a lock of its own:
//! a taken email is the unique index's to refuse, and a failed sign-in is counted by one upsert,
//! so processes sharing the database cannot lose a count.

use super::{PostgresStore, constraint};
use crate::sqlite::portal::{UserRow, normal_email, ts};
use crate::{
    Actor, NewPartner, NewPortalUser, PortalRole, PortalSession, PortalUser, Result,
    SignInFailures, Store, StoreError,
};
use jiff::Timestamp;
use ledgerport_core::entry::wire_time;
use ledgerport_core::world::{Partner, RowId};
use sqlx::{Postgres, Transaction};

impl PostgresStore {
    async fn insert_portal_user(
        &self,
        tx: &mut Transaction<'_, Postgres>,
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
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
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
        let mut tx = self.pool.begin().await?;
        let id = self.insert_portal_user(&mut tx, by, &u).await?;
        tx.commit().await?;
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
        // One transaction: a taken email rolls the partner back with it (the transaction is
        // dropped uncommitted on the error).
        let mut tx = self.pool.begin().await?;
        let partner_id = self.insert_partner(&mut tx, by, &p, " applied").await?;
        let user = NewPortalUser {
            email: email.to_owned(),
            role: PortalRole::Partner(partner_id),
            password_hash: password_hash.to_owned(),
        };
        let user_id = self.insert_portal_user(&mut tx, by, &user).await?;
        tx.commit().await?;
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
        let row: Option<UserRow> = sqlx::query_as("SELECT * FROM portal_users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(UserRow::into_domain).transpose()
    }

    pub(super) async fn portal_user_with_email(&self, email: &str) -> Result<Option<PortalUser>> {
        let row: Option<UserRow> = sqlx::query_as("SELECT * FROM portal_users WHERE email = $1")
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
        sqlx::query(
            "INSERT INTO portal_sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash.as_slice())
        .bind(user)
        .bind(csrf_token)
        .bind(self.now())
        .bind(wire_time(expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| constraint(e, || format!("session of portal user {user}")))?;
        Ok(())
    }

    pub(super) async fn portal_session(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<PortalSession>> {
        // Times are wire-form text, which sorts as time does (0001_world.sql).
        let row: Option<(i64, String, String, String)> = sqlx::query_as(
            "SELECT user_id, csrf_token, created_at, expires_at FROM portal_sessions \
             WHERE token_hash = $1 AND expires_at > $2",
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
        let n = sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1")
            .bind(token_hash.as_slice())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    pub(super) async fn portal_record_failure(&self, email: &str) -> Result<SignInFailures> {
        // The upsert returns the new count itself: a second query could see another process's
        // failure recorded in between.
        let (count, last): (i64, String) = sqlx::query_as(
            "INSERT INTO portal_sign_in_failures AS f (email, count, last_at) VALUES ($1, 1, $2) \
             ON CONFLICT (email) DO UPDATE SET count = f.count + 1, last_at = $2 \
             RETURNING f.count, f.last_at",
        )
        .bind(normal_email(email))
        .bind(self.now())
        .fetch_one(&self.pool)
        .await?;
        Ok(SignInFailures {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            last_at: Some(ts(&last)?),
        })
    }

    pub(super) async fn portal_failures(&self, email: &str) -> Result<SignInFailures> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT count, last_at FROM portal_sign_in_failures WHERE email = $1")
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
        sqlx::query("DELETE FROM portal_sign_in_failures WHERE email = $1")
            .bind(normal_email(email))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
