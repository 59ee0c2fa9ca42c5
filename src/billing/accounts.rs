//! The creator's Stripe account: an existing connected account of the platform recorded
//! (`PUT /v1/billing/account`, checked with Stripe first), or a Standard account made for
//! it and finished through Stripe's onboarding (`POST /v1/billing/onboarding`). Either
//! way every priced tier is synced to it at once. One account belongs to one creator
//! (webhooks find the creator by it).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use stripe_connect::account::{CreateAccount, CreateAccountType, RetrieveAccount};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use utoipa::openapi::schema::Object;

use crate::audit::model::Who;
use crate::billing::catalog::TierSyncView;
use crate::billing::client::{Created, Redirect, StripeError};
use crate::billing::{change_key, Billing};
use crate::customers::model::{optional_email_schema, stripe_id_schema};
use crate::error::ApiError;
use crate::schema::url_schema;
use crate::tenants::registry::Creator;

/// `PUT /v1/billing/account`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutAccount {
    #[schema(schema_with = account_id_schema)]
    pub account_id: String,
}

fn account_id_schema() -> Object {
    stripe_id_schema(
        "acct_",
        "An existing connected account of the platform (`acct_…`)",
    )
}

/// `POST /v1/billing/onboarding`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_url": "https://acme.example/stripe/retry",
    "return_url": "https://acme.example/stripe/done"}))]
pub struct NewOnboarding {
    /// Where Stripe sends the creator when the link expired or was already used.
    #[schema(schema_with = url_schema)]
    pub refresh_url: String,
    /// Where Stripe sends the creator when onboarding ends.
    #[schema(schema_with = url_schema)]
    pub return_url: String,
    /// Prefills the new account's email.
    #[schema(schema_with = optional_email_schema)]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub account_id: Option<String>,
    /// Each tier's Stripe objects.
    pub tiers: BTreeMap<String, TierSyncView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OnboardingView {
    pub account_id: String,
    /// The account link: send the creator here to finish onboarding with Stripe.
    pub url: String,
    pub tiers: BTreeMap<String, TierSyncView>,
}

fn account_taken() -> ApiError {
    ApiError::conflict(
        "account_taken",
        "another creator has connected this Stripe account",
    )
}

impl Billing {
    /// The connected account and each tier's standing, from the store alone.
    pub async fn account_view(&self, creator: &Creator) -> Result<AccountView, ApiError> {
        let account_id = self.store.stripe_account(&creator.tenant.id).await?;
        let tiers = self
            .catalog_view(&creator.tenant, account_id.as_deref())
            .await?;
        Ok(AccountView { account_id, tiers })
    }

    /// Records an existing connected account once Stripe shows it to the platform (the
    /// platform must be able to act for it), then syncs every tier to it.
    pub async fn connect_existing(
        &self,
        creator: &Creator,
        who: &Who,
        account_id: &str,
    ) -> Result<AccountView, ApiError> {
        if let Some(owner) = self.store.creator_by_stripe_account(account_id).await? {
            if owner != *creator.tenant.id {
                return Err(account_taken());
            }
        }
        match self
            .client
            .send::<_, Created>(&RetrieveAccount::new(account_id), None, None)
            .await
        {
            Ok(_) => {}
            Err(StripeError::Api {
                status: 400 | 403 | 404,
                message,
                ..
            }) => {
                return Err(ApiError::invalid(
                    "stripe_account_not_found",
                    format!(
                        "Stripe has no account `{account_id}` connected to this platform: \
                         {message}"
                    ),
                ))
            }
            Err(err) => return Err(err.into()),
        }
        let tiers = match self.connect(creator, who, account_id).await {
            Err(err) if err.code == "already_exists" => return Err(account_taken()),
            other => other?,
        };
        Ok(AccountView {
            account_id: Some(account_id.to_string()),
            tiers,
        })
    }

    /// Makes the creator's Standard account (once: later calls reuse it) and an
    /// onboarding link. Links are single-use (Stripe sends the creator to `refresh_url`
    /// for a new one), so only the caller's own key replays one.
    pub async fn onboard(
        &self,
        creator: &Creator,
        who: &Who,
        onboarding: &NewOnboarding,
        caller_key: Option<&str>,
    ) -> Result<OnboardingView, ApiError> {
        let (account_id, tiers) = match self.store.stripe_account(&creator.tenant.id).await? {
            Some(account) => (account, BTreeMap::new()),
            None => {
                let mut create = CreateAccount::new()
                    .type_(CreateAccountType::Standard)
                    .metadata(HashMap::from([(
                        "staryer_creator".to_string(),
                        creator.tenant.slug.to_string(),
                    )]));
                if let Some(email) = &onboarding.email {
                    create = create.email(email);
                }
                let key = format!("staryer:{}:account", creator.tenant.id);
                let account: Created = self.client.send(&create, None, Some(&key)).await?;
                let tiers = self.connect(creator, who, &account.id).await?;
                (account.id, tiers)
            }
        };
        let link = CreateAccountLink::new(
            account_id.as_str(),
            CreateAccountLinkType::AccountOnboarding,
        )
        .refresh_url(&onboarding.refresh_url)
        .return_url(&onboarding.return_url);
        let key = change_key("account_link", &creator.tenant.id, &account_id, caller_key);
        let link: Redirect = self.client.send(&link, None, Some(&key)).await?;
        Ok(OnboardingView {
            account_id,
            url: link.url,
            tiers,
        })
    }

    /// Records the account (with the change's record) and syncs every tier to it.
    async fn connect(
        &self,
        creator: &Creator,
        who: &Who,
        account_id: &str,
    ) -> Result<BTreeMap<String, TierSyncView>, ApiError> {
        let creator_id = &creator.tenant.id;
        let before = self.store.stripe_account(creator_id).await?;
        let mut record = who
            .change(
                creator_id,
                self.clock.now(),
                "billing_account",
                "connect",
                &**creator_id,
            )
            .after(&serde_json::json!({"account_id": account_id}));
        if before.is_some() {
            record = record.before(&serde_json::json!({"account_id": before}));
        }
        self.store
            .set_stripe_account(creator_id, account_id, &record)
            .await?;
        tracing::info!(creator = %creator.tenant.slug, account = %account_id,
            "Stripe account connected");
        Ok(self.sync_all_tiers(&creator.tenant).await)
    }
}
