//! [`CredentialStore`] on SQL: API keys, signing keys and server secrets.

use super::{Dialect, SqlStore, args, constraint};
use crate::key_owner_columns;
use crate::rows::{KeyAndStateRow, KeyRow, SigningKeyRow};
use crate::{Actor, CredentialStore, NewKey, Result, SigningKeyRecord, StoreError};
use async_trait::async_trait;
use ledgerport_core::world::{ApiKey, PartnerState, RowId};

impl<DB: Dialect> SqlStore<DB> {
    async fn require_key(&self, id: RowId) -> Result<ApiKey> {
        self.key(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("key {id}")))
    }

    /// A key read on the caller's thread (`direct`, on a SQLite file), or by the statement
    /// `fallback` with `value` as its parameter.
    async fn key_read(
        &self,
        direct: impl FnOnce(&crate::sqlite::direct::DirectReads) -> Result<Option<KeyRow>>,
        fallback: &'static str,
        value: &str,
    ) -> Result<Option<ApiKey>> {
        let row = match &self.direct {
            Some(d) => direct(d)?,
            None => self.opt(fallback, args![value]).await?,
        };
        row.map(KeyRow::into_domain).transpose()
    }
}

#[async_trait]
impl<DB: Dialect> CredentialStore for SqlStore<DB> {
    async fn create_key(&self, by: &Actor, k: NewKey) -> Result<ApiKey> {
        let (msn, partner, merchant) = key_owner_columns(k.owner);
        let (sk1, sk2) = match &k.subscription_keys {
            Some([a, b]) => (Some(a.clone()), Some(b.clone())),
            None => (None, None),
        };
        let now = self.now();
        let mut tx = self.begin().await?;
        // Each column is UNIQUE on its own; a key's first subscription key must not be another
        // key's second either, or a lookup by subscription key could find either key.
        if let (Some(a), Some(b)) = (&sk1, &sk2) {
            let taken: Option<(i64,)> = tx
                .opt(
                    "SELECT id FROM api_keys WHERE subscription_key_1 IN ($1, $2) \
                     OR subscription_key_2 IN ($1, $2) LIMIT 1",
                    args![a, b],
                )
                .await?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a subscription key of key {}",
                    k.client_id
                )));
            }
        }
        let (id,): (i64,) = tx
            .one(
                "INSERT INTO api_keys (kind, owner_msn, owner_partner_id, owner_merchant_id, client_id, secret_hash, \
                 generation, subscription_key_1, subscription_key_2, revoked, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, FALSE, $9) RETURNING id",
                args![
                    k.kind.as_str(),
                    msn,
                    partner,
                    merchant,
                    &k.client_id,
                    k.secret_hash.as_slice(),
                    sk1,
                    sk2,
                    now.as_str(),
                ],
            )
            .await
            .map_err(|e| constraint(e, || format!("key {}", k.client_id)))?;
        let detail = format!("{} client_id {}", k.kind.as_str(), k.client_id);
        tx.audit(&now, by, "key.issue", &format!("key {id}"), &detail)
            .await?;
        tx.commit().await?;
        self.require_key(id).await
    }

    async fn keys(&self) -> Result<Vec<ApiKey>> {
        let rows: Vec<KeyRow> = self
            .all("SELECT * FROM api_keys ORDER BY id", args![])
            .await?;
        rows.into_iter().map(KeyRow::into_domain).collect()
    }

    async fn key(&self, id: RowId) -> Result<Option<ApiKey>> {
        let row: Option<KeyRow> = self
            .opt("SELECT * FROM api_keys WHERE id = $1", args![id])
            .await?;
        row.map(KeyRow::into_domain).transpose()
    }

    async fn key_by_client_id(&self, client_id: &str) -> Result<Option<ApiKey>> {
        self.key_read(
            |d| d.key_by_client_id(client_id),
            "SELECT * FROM api_keys WHERE client_id = $1",
            client_id,
        )
        .await
    }

    async fn key_by_subscription_key(&self, key: &str) -> Result<Option<ApiKey>> {
        self.key_read(
            |d| d.key_by_subscription_key(key),
            "SELECT * FROM api_keys WHERE subscription_key_1 = $1 OR subscription_key_2 = $1",
            key,
        )
        .await
    }

    async fn key_with_partner_state(
        &self,
        client_id: &str,
    ) -> Result<Option<(ApiKey, Option<PartnerState>)>> {
        let row: Option<KeyAndStateRow> = match &self.direct {
            Some(d) => d
                .key_with_partner_state(client_id)?
                .map(|(key, partner_state)| KeyAndStateRow { key, partner_state }),
            None => {
                self.opt(
                    "SELECT k.*, p.state AS partner_state FROM api_keys k \
                     LEFT JOIN partners p ON p.id = k.owner_partner_id WHERE k.client_id = $1",
                    args![client_id],
                )
                .await?
            }
        };
        row.map(|r| {
            let state = r
                .partner_state
                .map(|s| PartnerState::parse("state", &s))
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((r.key.into_domain()?, state))
        })
        .transpose()
    }

    async fn replace_secret(&self, by: &Actor, id: RowId, secret_hash: [u8; 32]) -> Result<ApiKey> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "UPDATE api_keys SET secret_hash = $1, generation = generation + 1 \
                 WHERE id = $2 AND NOT revoked",
                args![secret_hash.as_slice(), id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("active key {id}")));
        }
        tx.audit(
            &now,
            by,
            "key.regenerate",
            &format!("key {id}"),
            "secret replaced",
        )
        .await?;
        tx.commit().await?;
        self.require_key(id).await
    }

    async fn revoke_key(&self, by: &Actor, id: RowId) -> Result<ApiKey> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "UPDATE api_keys SET revoked = TRUE WHERE id = $1",
                args![id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("key {id}")));
        }
        tx.audit(&now, by, "key.revoke", &format!("key {id}"), "revoked")
            .await?;
        tx.commit().await?;
        self.require_key(id).await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        let rows: Vec<SigningKeyRow> = self
            .all(
                "SELECT * FROM signing_keys ORDER BY created_at, kid",
                args![],
            )
            .await?;
        Ok(rows.into_iter().map(SigningKeyRecord::from).collect())
    }

    async fn add_signing_key(&self, by: &Actor, key: SigningKeyRecord) -> Result<()> {
        let now = self.now();
        let mut tx = self.begin().await?;
        tx.execute(
            "INSERT INTO signing_keys (kid, private_der, public_raw, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5)",
            args![
                &key.kid,
                key.private_der.as_slice(),
                key.public_raw.as_slice(),
                &key.created_at,
                key.retired_at.clone(),
            ],
        )
        .await
        .map_err(|e| constraint(e, || format!("signing key {}", key.kid)))?;
        tx.audit(&now, by, "signing-key.add", &key.kid, "").await?;
        tx.commit().await
    }

    async fn retire_signing_key(&self, by: &Actor, kid: &str) -> Result<()> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
                args![now.as_str(), kid],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("active signing key {kid}")));
        }
        tx.audit(&now, by, "signing-key.retire", kid, "").await?;
        tx.commit().await
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>> {
        self.write_one(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            args![name, candidate],
        )
        .await?;
        let (value,): (Vec<u8>,) = self
            .one(
                "SELECT value FROM server_secrets WHERE name = $1",
                args![name],
            )
            .await?;
        Ok(value)
    }
}
