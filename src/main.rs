//! The `staryer` command: serve (the default), set up a demo creator, check a running
//! daemon's health, print the configuration. Config -> telemetry -> App::build -> run
//! until a signal. Errors are printed as one chain of causes, never a backtrace; usage
//! errors exit 2 (clap's convention), failures 1.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use staryer::clock::SystemClock;
use staryer::config::Config;
use staryer::startup::App;

#[derive(Parser)]
#[command(
    name = "staryer",
    version,
    about = "Usage metering and monetization: allow/warn/block decisions from memory, durable counts.",
    after_help = "Configuration: config/default.toml (built in), then the file named by \
                  STARYER_CONFIG, then STARYER__<SECTION>__<KEY> variables; see \
                  `staryer config --help` and docs/configuration.md. Logs follow RUST_LOG."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (what `staryer` alone does).
    Serve,
    /// Set up a demo creator on the running daemon and print its keys and curl lines.
    Demo,
    /// Exit 0 when the daemon at server.bind answers /readyz with 200, else 1 (for
    /// container health checks).
    Health,
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Print the configuration in force (secrets redacted), or the settings' reference.
    Config {
        /// Print the reference of every setting (docs/configuration.md) instead.
        #[arg(long)]
        reference: bool,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Walk the audit log's hash chain from its start (or retention's anchor) to its end;
    /// exit 0 when every record chains, else name the first broken one and exit 1.
    Verify,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Config { reference: true }) = cli.command {
        print!("{}", staryer::config::reference_markdown());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => return fail(&anyhow::Error::new(err).context("invalid configuration")),
    };
    let outcome = match cli.command {
        None | Some(Command::Serve) => serve(config),
        Some(Command::Demo) => block_on(staryer::demo::run(&config)),
        Some(Command::Health) => block_on(staryer::health::run(&config)),
        Some(Command::Audit {
            action: AuditAction::Verify,
        }) => block_on(verify_audit(&config)),
        Some(Command::Config { .. }) => {
            print!("{}", config.redacted_toml());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    staryer::telemetry::init_tracing(&config.log);
    actix_web::rt::System::new().block_on(async move {
        let app = App::build(config, Arc::new(SystemClock)).await?;
        app.run_until_stopped().await?;
        Ok(())
    })
}

/// `staryer audit verify`: reads the database the daemon uses (the daemon may be running).
async fn verify_audit(config: &Config) -> anyhow::Result<()> {
    use staryer::audit::service::{verify, Verdict};
    let store = staryer::store::Store::connect(
        &config.database_url(),
        1,
        std::time::Duration::from_millis(config.database.write_timeout_ms),
    )
    .await?;
    let verdict = verify(&store).await;
    store.close().await;
    match verdict? {
        Verdict::Intact {
            records,
            pruned_through,
        } => {
            let anchor = match pruned_through {
                0 => String::new(),
                seq => format!(" (records up to {seq} were removed by retention)"),
            };
            println!("the audit log is intact: {records} records chain{anchor}");
            Ok(())
        }
        Verdict::Broken { seq, reason } => {
            anyhow::bail!("the audit log is broken at record {seq}: {reason}")
        }
    }
}

fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(work: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("staryer: {err:#}");
    ExitCode::FAILURE
}
