//! `staryer health`: asks the daemon at `server.bind` whether it is ready (`/readyz`), for
//! container health checks. Exits 0 on 200; otherwise says why and exits 1.

use std::time::Duration;

use anyhow::{bail, Context};

use crate::config::Config;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let url = format!("{}/readyz", config.local_base_url());
    let answer = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(|| format!("no answer from {url}"))?;
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    if status.is_success() {
        println!("ready");
        Ok(())
    } else {
        bail!("{url} answered {status}: {body}")
    }
}
