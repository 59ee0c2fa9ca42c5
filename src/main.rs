//! `staryer` serves; `staryer demo` sets up a demo creator on a running daemon.
//! Config -> telemetry -> App::build -> run until a signal.

use std::sync::Arc;

use anyhow::Context;
use staryer::clock::SystemClock;
use staryer::config::Config;
use staryer::startup::App;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    staryer::telemetry::init_tracing();
    let config = Config::load().context("loading configuration")?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let app = App::build(config, Arc::new(SystemClock)).await?;
            app.run_until_stopped().await?;
            Ok(())
        }
        Some("demo") => staryer::demo::run(&config).await,
        Some(other) => anyhow::bail!("unknown command `{other}`; use `staryer` or `staryer demo`"),
    }
}
