//! Stripe Customers on the creator's account, one per Staryer customer that buys: made
//! when a customer with an email is put on a paid tier or first checks out, named by
//! metadata (`staryer_creator`, `staryer_customer_id`) and kept in the customer's row.
//! Before making one, Stripe is searched by that metadata, so a daemon on a new database
//! finds the customers an earlier one made instead of doubling them.

use std::collections::HashMap;
use std::sync::Arc;

use stripe_core::customer::{CreateCustomer, DeleteCustomer, SearchCustomer};

use crate::audit::model::Who;
use crate::billing::client::{Created, StripeError};
use crate::billing::{request_key, Billing};
use crate::customers::model::CustomerUpdate;
use crate::error::ApiError;
use crate::tenants::registry::Creator;

/// A search answer: the ids found.
#[derive(Debug, miniserde::Deserialize)]
pub struct Found {
    pub data: Vec<Created>,
}

/// A term of Stripe's search query language: `metadata['key']:'value'`, the value's
/// quotes and backslashes escaped.
pub fn metadata_term(key: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
    format!("metadata['{key}']:'{escaped}'")
}

impl Billing {
    /// The customer's Stripe Customer id: the one it has, else the one an earlier
    /// database made (found by metadata), else a new one. The customer is created in
    /// Staryer too if it was never seen (on the default tier).
    pub async fn ensure_stripe_customer(
        &self,
        creator: &Creator,
        account: &str,
        customer_id: &str,
    ) -> Result<String, ApiError> {
        let known = self.store.customer(&creator.tenant.id, customer_id).await?;
        if let Some(stripe_id) = known
            .as_ref()
            .and_then(|row| row.stripe_customer_id.clone())
        {
            return Ok(stripe_id);
        }
        let email = known.as_ref().and_then(|row| row.email.clone());
        let query = format!(
            "{} AND {}",
            metadata_term("staryer_creator", &creator.tenant.slug),
            metadata_term("staryer_customer_id", customer_id)
        );
        let found: Found = self
            .client
            .send(&SearchCustomer::new(query).limit(1), Some(account), None)
            .await?;
        let stripe_id = match found.data.into_iter().next() {
            Some(existing) => existing.id,
            None => {
                let mut create = CreateCustomer::new().metadata(HashMap::from([
                    (
                        "staryer_creator".to_string(),
                        creator.tenant.slug.to_string(),
                    ),
                    ("staryer_customer_id".to_string(), customer_id.to_string()),
                ]));
                if let Some(email) = &email {
                    create = create.email(email);
                }
                let key = request_key("customer", &[&creator.tenant.id, customer_id]);
                let made: Created = self.client.send(&create, Some(account), Some(&key)).await?;
                made.id
            }
        };
        match known {
            // Only the Stripe id is written: a tier or email changed meanwhile stays.
            Some(_) => {
                self.store
                    .set_stripe_customer_id(
                        &creator.tenant.id,
                        customer_id,
                        &stripe_id,
                        self.clock.now(),
                    )
                    .await?
            }
            None => {
                let update = CustomerUpdate {
                    id: Arc::from(customer_id),
                    tier: None,
                    email: None,
                    stripe_customer_id: Some(stripe_id.clone()),
                };
                let record = Who::system("billing").customer_change(
                    &creator.tenant.id,
                    self.clock.now(),
                    "link_stripe_customer",
                    customer_id,
                );
                creator.actor.upsert_customer(update, record).await?;
            }
        }
        Ok(stripe_id)
    }

    /// Deletes a Stripe Customer on the creator's account (Stripe cancels its
    /// subscriptions with it); one already gone counts as deleted.
    pub async fn delete_stripe_customer(
        &self,
        creator_id: &str,
        stripe_customer_id: &str,
    ) -> Result<(), ApiError> {
        let account = self.account_of(creator_id).await?;
        let request = DeleteCustomer::new(stripe_customer_id);
        match self
            .client
            .send::<_, Created>(&request, Some(&account), None)
            .await
        {
            Err(StripeError::Api { status: 404, .. }) | Ok(_) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Forgets what memory holds of an erased customer (its standing).
    pub fn forget_customer(&self, creator_id: &str, customer_id: &str) {
        self.standings
            .remove(&(creator_id.to_string(), customer_id.to_string()));
    }
}
