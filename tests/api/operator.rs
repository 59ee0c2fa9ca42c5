//! The first hour of an operator, through the real binary: the command line, strict
//! configuration, one writer per database, honest readiness.

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::helpers::{assert_error, free_port, ok_json, run_binary, spawn_app, Backend, Daemon};
use crate::on_both_databases;

#[test]
fn help_and_version_answer_and_unknown_input_exits_2_without_a_backtrace() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["serve", "--help"],
        &["demo", "--help"],
    ] {
        let (code, stdout, _) = run_binary(args, &[]);
        assert_eq!(code, 0, "{args:?}");
        assert!(stdout.contains("Usage:"), "{args:?}: {stdout}");
    }
    let (code, stdout, _) = run_binary(&["--version"], &[]);
    assert_eq!(
        (code, stdout.trim()),
        (0, concat!("staryer ", env!("CARGO_PKG_VERSION")))
    );
    for args in [&["bogus"][..], &["--bogus"], &["demo", "extra"]] {
        let (code, _, stderr) = run_binary(args, &[]);
        assert_eq!(code, 2, "{args:?}");
        assert!(stderr.contains("Usage:"), "{args:?}: {stderr}");
        assert!(!stderr.contains("backtrace"), "{args:?}: {stderr}");
    }
}

#[test]
fn unknown_settings_stop_the_start_with_the_nearest_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("staryer.toml");
    std::fs::write(&file, "[stripe]\nsecret_keyy = \"sk_test_x\"\n").unwrap();
    let file = file.to_str().unwrap();
    let (code, _, stderr) = run_binary(&["config"], &[("STARYER_CONFIG", file)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("unknown setting `stripe.secret_keyy`")
            && stderr.contains("did you mean `stripe.secret_key`?"),
        "{stderr}"
    );
    let (code, _, stderr) = run_binary(&["serve"], &[("STARYER__SERVER_BIND", "127.0.0.1:0")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("did you mean `STARYER__SERVER__BIND`?"),
        "{stderr}"
    );
}

#[test]
fn the_printed_configuration_is_in_force_and_hides_secrets() {
    let (code, stdout, stderr) = run_binary(
        &["config"],
        &[
            ("STARYER__STRIPE__SECRET_KEY", "sk_test_secret"),
            ("STARYER__SERVER__WORKERS", "3"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("workers = 3"), "{stdout}");
    assert!(stdout.contains("secret_key = \"<redacted>\""), "{stdout}");
    assert!(!stdout.contains("sk_test_secret"), "{stdout}");
}

#[test]
fn a_bad_bind_address_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for bind in ["127.0.0.1:99999", "nowhere", taken.as_str()] {
        let (code, _, stderr) = run_binary(
            &[],
            &[("STARYER__SERVER__BIND", bind), ("STARYER__DATA_DIR", data)],
        );
        assert_eq!(code, 1, "{bind}: {stderr}");
        assert!(stderr.contains("server.bind"), "{bind}: {stderr}");
        assert!(!stderr.contains("admin token"), "{bind}: {stderr}");
        assert!(!data_dir.exists(), "{bind}: nothing is written");
    }
}

on_both_databases!(
    a_second_daemon_on_the_same_database_exits_at_once_naming_the_holder,
    health_command_follows_readiness,
);

async fn a_second_daemon_on_the_same_database_exits_at_once_naming_the_holder(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = backend.fresh_database().await;
    let first = Daemon::start(data_dir.path(), &database_url, free_port(), &[]).await;
    let port = free_port().to_string();
    let bind = format!("127.0.0.1:{port}");
    let data = data_dir.path().to_str().unwrap();
    let started = std::time::Instant::now();
    let (code, _, stderr) = run_binary(
        &[],
        &[
            ("STARYER__SERVER__BIND", &bind),
            ("STARYER__DATA_DIR", data),
            ("STARYER__DATABASE__URL", &database_url),
            ("STARYER__ADMIN__TOKEN", "adm_second"),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        stderr.contains("another staryer daemon already writes to this database")
            && stderr.contains(&format!("pid {}", first.pid()))
            && stderr.contains(" since "),
        "{stderr}"
    );
    // The first keeps serving.
    let ready = reqwest::get(format!("{}/readyz", first.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

async fn health_command_follows_readiness(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = backend.fresh_database().await;
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let (code, _, stderr) = run_binary(&["health"], &[("STARYER__SERVER__BIND", &bind)]);
    assert_eq!(code, 1, "nothing listens yet: {stderr}");
    let _daemon = Daemon::start(data_dir.path(), &database_url, port, &[]).await;
    let (code, stdout, stderr) = run_binary(&["health"], &[("STARYER__SERVER__BIND", &bind)]);
    assert_eq!((code, stdout.trim()), (0, "ready"), "{stderr}");
}

on_both_databases!(a_store_that_refuses_writes_is_not_ready_and_says_why);

async fn a_store_that_refuses_writes_is_not_ready_and_says_why(backend: Backend) {
    let app = spawn_app(backend.clone()).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let event = json!({"customer_id": "c1", "meter": "calls"});
    app.event(&creator, event.clone()).await;
    let (app, expected_cause, read_write) = match &backend {
        Backend::Sqlite => {
            let url = app.database_url.replace("mode=rwc", "mode=ro");
            let app = app
                .restart_unready_with(|config| config.database.url = url)
                .await;
            (app, "readonly", None)
        }
        Backend::Postgres(server) => {
            let database = app.database_url.rsplit_once('/').unwrap().1.to_string();
            let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
            set_read_only(&mut admin, &database, true).await;
            (app, "read-only transaction", Some((admin, database)))
        }
    };
    wait_for_readyz(&app, 503, Some(expected_cause)).await;
    if let Some((mut admin, database)) = read_write {
        assert_error(
            app.post("/v1/events", &creator.secret_key, &event).await,
            503,
            "store_unavailable",
        )
        .await;
        set_read_only(&mut admin, &database, false).await;
        wait_for_readyz(&app, 200, None).await;
        app.event(&creator, event).await;
        assert_eq!(app.used(&creator, "c1", "calls").await, 2);
    }
}

/// Makes new sessions on `database` read-only (or not), and ends the current ones so the
/// daemon's pool reconnects under the new default.
async fn set_read_only(admin: &mut sqlx::PgConnection, database: &str, read_only: bool) {
    let setting = if read_only {
        "SET default_transaction_read_only = on"
    } else {
        "RESET default_transaction_read_only"
    };
    sqlx::query(&format!("ALTER DATABASE {database} {setting}"))
        .execute(&mut *admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(database)
        .execute(&mut *admin)
        .await
        .unwrap();
}

/// Polls `/readyz` until it answers `status` (for a 503: `store_unavailable`, with a
/// message that names `cause`); answers its body.
async fn wait_for_readyz(
    app: &crate::helpers::TestApp,
    status: u16,
    cause: Option<&str>,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..200 {
        let answer = app.client.get(app.url("/readyz")).send().await.unwrap();
        if answer.status().as_u16() == status {
            last = ok_json(answer, status).await;
            let message = last["error"]["message"].as_str().unwrap_or_default();
            if cause.is_none_or(|cause| {
                last["error"]["code"] == "store_unavailable" && message.contains(cause)
            }) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered {status} {cause:?}; last: {last}");
}

/// PostgreSQL only: the writer hold lives on a connection of its own; when that connection
/// dies, ingest stops until the hold is taken again.
#[actix_web::test]
async fn a_lost_writer_hold_stops_ingest_until_it_is_taken_again() {
    let Some(backend @ Backend::Postgres(_)) = Backend::postgres() else {
        eprintln!("STARYER_TEST_DATABASE_URL is not set: PostgreSQL not tested");
        return;
    };
    let Backend::Postgres(server) = &backend else {
        unreachable!()
    };
    let app = spawn_app(backend.clone()).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let event = json!({"customer_id": "c1", "meter": "calls"});
    let database = app.database_url.rsplit_once('/').unwrap().1.to_string();
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
    let server_base = server.rsplit_once('/').unwrap().0;
    let mut usurper = sqlx::PgConnection::connect(&format!("{server_base}/{database}"))
        .await
        .unwrap();
    // End the daemon's session that has the writer lock, and take the lock from outside
    // before the daemon takes it back (it retries every 100 ms: try again if it wins).
    let mut locked = false;
    for _ in 0..20 {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name LIKE 'staryer pid%'",
        )
        .bind(&database)
        .execute(&mut admin)
        .await
        .unwrap();
        for _ in 0..40 {
            locked = sqlx::query_scalar("SELECT pg_try_advisory_lock(1398035033)")
                .fetch_one(&mut usurper)
                .await
                .unwrap();
            if locked {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if locked {
            break;
        }
    }
    assert!(locked, "the daemon's lock died with its session");
    wait_for_readyz(&app, 503, Some("writer hold")).await;
    assert_error(
        app.post("/v1/events", &creator.secret_key, &event).await,
        503,
        "store_unavailable",
    )
    .await;
    usurper.close().await.unwrap();
    wait_for_readyz(&app, 200, None).await;
    let result = app.event(&creator, event).await;
    assert_eq!(result["used"], 1, "{result}");
}

/// Runs the binary until ready, stops it with SIGINT; answers (exit code, stdout).
async fn serve_then_interrupt(env: &[(&str, &str)]) -> (i32, String) {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_staryer"))
        .envs(env.iter().copied())
        .env("STARYER__DATA_DIR", data_dir.path())
        .env("STARYER__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    for _ in 0..400 {
        match reqwest::get(&ready).await {
            Ok(answer) if answer.status() == 200 => break,
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[actix_web::test]
async fn the_log_names_what_is_in_use_and_a_ctrl_c_stops_cleanly() {
    let (code, log) = serve_then_interrupt(&[]).await;
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains('\u{1b}'), "no colours into a pipe: {log}");
    for expected in [
        concat!("version=", env!("CARGO_PKG_VERSION")),
        "store=SQLite /",
        "billing=off",
        "SIGINT received",
        "stopped",
    ] {
        assert!(log.contains(expected), "{expected} missing from:\n{log}");
    }
    assert!(!log.to_lowercase().contains("forced"), "{log}");
}

#[actix_web::test]
async fn json_logs_are_one_object_a_line() {
    let (code, log) = serve_then_interrupt(&[("STARYER__LOG__FORMAT", "json")]).await;
    assert_eq!(code, 0, "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(log.lines().all(|line| line.starts_with('{')), "{log}");
    assert!(lines
        .iter()
        .any(|line| line["fields"]["message"] == "counters loaded; ready"));
}

#[test]
fn an_unreachable_or_missing_postgres_database_says_why() {
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().to_str().unwrap();
    let unreachable = format!("postgres://postgres@127.0.0.1:{}/staryer", free_port());
    let (code, _, stderr) = run_binary(
        &[],
        &[
            ("STARYER__DATABASE__URL", &unreachable),
            ("STARYER__DATA_DIR", data),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return;
    };
    let base = server.rsplit_once('/').unwrap().0;
    let missing = format!("{base}/staryer_test_never_created");
    let (code, _, stderr) = run_binary(
        &[],
        &[
            ("STARYER__DATABASE__URL", &missing),
            ("STARYER__DATA_DIR", data),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("does not exist") && stderr.contains("createdb"),
        "{stderr}"
    );
}

/// `staryer demo` sets up what it prints, and the walk-through it prints is true: alice
/// has used 7, so the 8th event allows, the 9th and 10th warn, the 11th is blocked; the
/// owner it prints signs in to the dashboard, which shows alice's usage; the portal link
/// it prints opens alice's portal.
#[actix_web::test]
async fn the_demo_walk_through_is_true() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let daemon = Daemon::start(data_dir.path(), "", port, &[]).await;
    let bind = format!("0.0.0.0:{port}");
    let (code, stdout, stderr) = run_binary(
        &["demo"],
        &[
            ("STARYER__SERVER__BIND", &bind),
            ("STARYER__ADMIN__TOKEN", crate::helpers::ADMIN_TOKEN),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let word_after = |label: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("no `{label}` in {stdout}"))
    };
    let secret = word_after("secret key:");
    assert!(
        stdout.contains("the 8th answers \"allow\", the 9th and 10th \"warn\", the 11th \"block\"")
    );
    let client = reqwest::Client::new();
    let mut decisions = Vec::new();
    for _ in 8..=11 {
        let result = ok_json(
            client
                .post(format!("{}/v1/events", daemon.base))
                .bearer_auth(&secret)
                .json(&json!({"customer_id": "alice", "meter": "api_calls"}))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        decisions.push(result["decision"].as_str().unwrap().to_string());
    }
    assert_eq!(decisions, ["allow", "warn", "warn", "block"]);

    let browser = crate::web_client::WebClient::new(&daemon.base);
    browser
        .sign_in(&word_after("email:"), &word_after("password:"))
        .await;
    let page = browser.page("/dashboard/customers/alice").await;
    assert!(page.contains("10"), "alice's usage shows: {page}");
    let portal_link = stdout
        .split_whitespace()
        .find(|word| word.contains("/portal/enter?token="))
        .unwrap_or_else(|| panic!("no portal link in {stdout}"));
    let portal = crate::web_client::WebClient::new(&daemon.base);
    portal.enter_portal(portal_link).await;
    let home = portal.page("/portal").await;
    assert!(home.contains("Usage this period"), "{home}");
}
