//! The packaging files stay true to the crate: the Dockerfile's dependency layer stubs
//! every target Cargo.toml declares (or the manifest would not load in that layer), copies
//! every folder the binary compiles in, and checks health with the binary itself.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_dockerfile_stubs_every_target_and_copies_every_compiled_folder() {
    let dockerfile = read("Dockerfile");
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let mut targets = vec!["src/main.rs".to_string(), "src/lib.rs".to_string()];
    for (kind, folder) in [
        ("bench", "benches"),
        ("example", "examples"),
        ("test", "tests"),
    ] {
        for target in manifest
            .get(kind)
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let path = match target.get("path").and_then(|p| p.as_str()) {
                Some(path) => path.to_string(),
                None => format!("{folder}/{}.rs", target["name"].as_str().unwrap()),
            };
            targets.push(path);
        }
    }
    for target in &targets {
        assert!(
            dockerfile.contains(&format!("> {target}"))
                || dockerfile.contains(&format!("touch {target}")),
            "the Dockerfile's dependency layer does not stub {target}"
        );
    }
    // Folders whose files the binary embeds (include_str!, include_bytes!, migrate!).
    for folder in ["src", "config", "migrations", "assets"] {
        if Path::new(env!("CARGO_MANIFEST_DIR")).join(folder).exists() {
            assert!(
                dockerfile.contains(&format!("COPY {folder} {folder}")),
                "the Dockerfile does not copy {folder}/"
            );
        }
    }
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("\"health\"]"));
}

#[test]
fn the_load_test_answers_help_without_starting_a_run() {
    let run = |arg: &str| {
        std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("loadtest/run"))
            .arg(arg)
            .output()
            .expect("loadtest/run runs")
    };
    let help = run("--help");
    let usage = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status.code(), Some(0), "{usage}");
    for prerequisite in [
        "Usage:",
        "wrk",
        "psql",
        "CREATE DATABASE",
        "STARYER_LOADTEST_PG",
    ] {
        assert!(
            usage.contains(prerequisite),
            "{prerequisite} missing from:\n{usage}"
        );
    }
    let mistake = run("--bogus");
    assert_eq!(mistake.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mistake.stderr).contains("Usage:"));
}
