//! `staryer demo`: sets up a demo creator on the running daemon (the one `server.bind` and
//! the admin token in config or `data_dir/admin_token` point at) with a little usage, and
//! prints its keys, its dashboard owner's sign-in, a portal link for one customer, and the
//! curl lines that walk an event from allow to warn to block.

use anyhow::{bail, Context};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Value};

use crate::config::Config;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let base = config.local_base_url();
    let token = if config.admin.token.is_empty() {
        let path = config.data_dir.join("admin_token");
        std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (start the daemon first)", path.display()))?
            .trim()
            .to_string()
    } else {
        config.admin.token.clone()
    };
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let suffix = Alphanumeric
        .sample_string(&mut rand::rng(), 6)
        .to_ascii_lowercase();
    let slug = format!("demo-{suffix}");
    let created = expect_ok(
        post(
            "/v1/admin/creators",
            &token,
            json!({"slug": slug, "name": "Demo"}),
        )
        .await?,
    )
    .await?;
    let secret = created["secret_key"]
        .as_str()
        .context("secret_key")?
        .to_string();
    expect_ok(post("/v1/meters", &secret, json!({"key": "api_calls", "name": "API calls", "aggregation": "count", "reset": "month"})).await?).await?;
    expect_ok(
        post(
            "/v1/tiers",
            &secret,
            json!({
                "key": "free", "name": "Free", "default": true,
                "price": {"amount": 0, "currency": "usd", "interval": "month"},
                "caps": {"api_calls": {"limit": 10, "warn_at": 0.8, "on_exceed": "block"}},
                "features": ["basic_reports"]
            }),
        )
        .await?,
    )
    .await?;
    let put = client
        .put(format!("{base}/v1/customers/alice"))
        .bearer_auth(&secret)
        .json(&json!({"tier": "free", "email": "alice@example.com"}))
        .send()
        .await?;
    expect_ok(put).await?;
    // Some usage for the dashboard to show: alice at 7 of 10, two more customers.
    let mut events = Vec::new();
    for (customer, count) in [("alice", 7), ("bob", 4), ("carol", 2)] {
        events.extend((0..count).map(|_| json!({"customer_id": customer, "meter": "api_calls"})));
    }
    expect_ok(post("/v1/events", &secret, json!({ "events": events })).await?).await?;
    let email = format!("owner@{slug}.example");
    let password = Alphanumeric.sample_string(&mut rand::rng(), 16);
    expect_ok(
        post(
            &format!("/v1/admin/creators/{slug}/users"),
            &token,
            json!({"email": email, "role": "owner", "password": password}),
        )
        .await?,
    )
    .await?;
    let portal = expect_ok(
        post(
            "/v1/customers/alice/sessions",
            &secret,
            json!({"scope": "portal"}),
        )
        .await?,
    )
    .await?;
    let portal_token = portal["token"].as_str().context("token")?;

    println!(
        r#"Demo creator `{slug}` is ready.

  secret key:      {secret}
  publishable key: {publishable}

Its dashboard: {base}/dashboard
  email:    {email}
  password: {password}

Alice's customer portal (the link works once, for an hour):
  {base}/portal/enter?token={portal_token}

Customer `alice` is on tier `free`: meter `api_calls` capped at 10, warning past 8, and
has used 7. Post events; the 8th answers "allow", the 9th and 10th "warn", the 11th "block":

  curl -s {base}/v1/events -H 'Authorization: Bearer {secret}' \
       -d '{{"customer_id": "alice", "meter": "api_calls"}}'

Check without counting, and read usage:

  curl -s {base}/v1/check -H 'Authorization: Bearer {secret}' \
       -d '{{"customer_id": "alice", "meter": "api_calls"}}'
  curl -s {base}/v1/customers/alice/usage -H 'Authorization: Bearer {secret}'
"#,
        publishable = created["publishable_key"].as_str().unwrap_or_default(),
    );
    Ok(())
}

async fn expect_ok(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("the daemon answered {status}: {body}");
    }
    Ok(body)
}
