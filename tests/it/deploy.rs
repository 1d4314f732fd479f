//! The deployment examples under `deploy/` are what operators copy: every Kubernetes document
//! parses and names itself, the Deployments run several replicas with probes on `/healthz` and
//! `/readyz` and the database URL from a Secret, and every flag the examples pass to
//! `coder-server` is one the binary has (read from its own `--help`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::BIN;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// The `--flags` that `coder-server <subcommand> --help` lists.
fn flags_of(subcommand: &str) -> BTreeSet<String> {
    let out = std::process::Command::new(BIN)
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{subcommand} --help");
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split(['=', '<', '[']).next().unwrap_or(w).to_owned())
        .collect()
}

/// Fails unless every `--flag` in `args` (after the subcommand, `args[0]`) is a real flag.
fn assert_real_flags(args: &[String], whose: &str) {
    let subcommand = args.first().map(String::as_str).unwrap_or("serve");
    let known = flags_of(subcommand);
    let used: Vec<&String> = args.iter().filter(|a| a.starts_with("--")).collect();
    assert!(!used.is_empty(), "{whose}: no flags at all");
    for flag in used {
        let name = flag.split('=').next().unwrap();
        assert!(
            known.contains(name),
            "{whose}: `coder-server {subcommand}` has no flag {name}"
        );
    }
}

/// Every YAML document of the Kubernetes examples, with its file name.
fn kubernetes_documents() -> Vec<(String, Value)> {
    let mut found = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the Kubernetes examples: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(document)
                .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
            if !value.is_null() {
                found.push((name.clone(), value));
            }
        }
    }
    found
}

/// The containers running `coder-server` in a pod spec.
fn coder_containers(pod: &Value) -> Vec<&Value> {
    let mut containers: Vec<&Value> = Vec::new();
    for list in ["initContainers", "containers"] {
        if let Some(items) = pod[list].as_array() {
            containers.extend(
                items
                    .iter()
                    .filter(|c| c["image"].as_str().unwrap_or("").contains("coder-server")),
            );
        }
    }
    containers
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_kubernetes_document_parses_and_names_itself() {
    let documents = kubernetes_documents();
    let mut kinds = BTreeSet::new();
    for (file, doc) in &documents {
        for field in ["apiVersion", "kind"] {
            assert!(doc[field].is_string(), "{file}: no {field}");
        }
        assert!(
            doc["metadata"]["name"].is_string(),
            "{file}: no metadata.name"
        );
        kinds.insert(doc["kind"].as_str().unwrap().to_owned());
    }
    for kind in ["Deployment", "Service", "ConfigMap", "Secret", "Job"] {
        assert!(kinds.contains(kind), "an example {kind} (found {kinds:?})");
    }
}

#[test]
fn deployments_run_several_replicas_with_probes_and_real_flags() {
    let documents = kubernetes_documents();
    let deployments: Vec<&(String, Value)> = documents
        .iter()
        .filter(|(_, d)| d["kind"] == "Deployment")
        .collect();
    assert!(
        deployments.len() >= 2,
        "the plain and the git-sync Deployment"
    );
    for (file, deployment) in deployments {
        assert!(
            deployment["spec"]["replicas"].as_u64().unwrap_or(0) >= 2,
            "{file}: several replicas"
        );
        let pod = &deployment["spec"]["template"]["spec"];
        let containers = coder_containers(pod);
        let servers: Vec<&&Value> = containers
            .iter()
            .filter(|c| strings(&c["args"]).first().is_some_and(|a| a == "serve"))
            .collect();
        assert_eq!(servers.len(), 1, "{file}: one coder-server serve container");
        let server = servers[0];
        assert_eq!(
            server["livenessProbe"]["httpGet"]["path"], "/healthz",
            "{file}"
        );
        assert_eq!(
            server["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{file}"
        );
        let env = server["env"].as_array().cloned().unwrap_or_default();
        let database = env
            .iter()
            .find(|e| e["name"] == "CODERFLOW_DATABASE_URL")
            .unwrap_or_else(|| panic!("{file}: CODERFLOW_DATABASE_URL"));
        assert!(
            database["valueFrom"]["secretKeyRef"]["name"].is_string(),
            "{file}: the database URL comes from a Secret"
        );
        for container in containers {
            assert_real_flags(&strings(&container["args"]), file);
        }
    }
}

#[test]
fn the_migration_job_runs_migrate_db_with_real_flags() {
    let documents = kubernetes_documents();
    let (file, job) = documents
        .iter()
        .find(|(_, d)| d["kind"] == "Job")
        .expect("a Job");
    let containers = coder_containers(&job["spec"]["template"]["spec"]);
    assert_eq!(containers.len(), 1, "{file}");
    let args = strings(&containers[0]["args"]);
    assert_eq!(
        args.first().map(String::as_str),
        Some("migrate-db"),
        "{file}"
    );
    if args.len() > 1 {
        assert_real_flags(&args, file);
    }
}

#[test]
fn the_secrets_hold_an_oidc_json_that_only_lacks_real_values() {
    let documents = kubernetes_documents();
    let example = documents
        .iter()
        .filter(|(_, d)| d["kind"] == "Secret")
        .find_map(|(_, d)| d["stringData"]["oidc.json"].as_str())
        .expect("a Secret with oidc.json");
    // As given it is refused for its placeholders only, so an unedited copy never goes live...
    let problems = coderflow::setup::config::parse_oidc_config(example.as_bytes())
        .expect_err("the example's placeholders are refused");
    for problem in &problems {
        assert!(
            problem.message.contains("placeholder"),
            "{}",
            problem.message
        );
    }
    // ...and with real values in their place it is a valid configuration.
    let mut filled: Value = serde_json::from_str(example).unwrap();
    filled["client_id"] = "coderflow".into();
    filled["client_secret"] = "a-real-secret-value".into();
    filled["issuer"] = "https://login.example.com/".into();
    coderflow::setup::config::parse_oidc_config(filled.to_string().as_bytes())
        .unwrap_or_else(|p| panic!("the example with real values: {p:?}"));
}

/// The systemd unit: sections, one `ExecStart` of `coder-server serve` with real flags.
#[test]
fn the_systemd_unit_starts_serve_with_real_flags() {
    let text = std::fs::read_to_string(deploy_dir().join("systemd/coder-server.service")).unwrap();
    let mut section = String::new();
    let mut sections = BTreeSet::new();
    let mut exec_start = Vec::new();
    // Continuation lines (a trailing backslash) join the next.
    let joined = text.replace("\\\n", " ");
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            assert!(line.ends_with(']'), "a section header: {line}");
            section = line.to_owned();
            sections.insert(section.clone());
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("`key=value` lines only: {line}"));
        assert!(!section.is_empty(), "{key} before any section");
        if section == "[Service]" && key == "ExecStart" {
            exec_start.push(value.to_owned());
        }
    }
    for wanted in ["[Unit]", "[Service]", "[Install]"] {
        assert!(sections.contains(wanted), "{wanted}");
    }
    assert_eq!(exec_start.len(), 1, "one ExecStart");
    let words: Vec<String> = exec_start[0]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert!(words[0].ends_with("/coder-server"), "{}", words[0]);
    assert_eq!(words[1], "serve");
    assert_real_flags(&words[1..], "coder-server.service");
}

/// The HAProxy example balances without stickiness and checks readiness.
#[test]
fn the_haproxy_example_balances_round_robin_on_readiness() {
    let text = std::fs::read_to_string(deploy_dir().join("haproxy/haproxy.cfg")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(lines.contains(&"balance roundrobin"));
    assert!(lines.iter().any(|l| l.contains("/readyz")));
    assert!(lines.iter().any(|l| l.starts_with("option forwardfor")));
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("cookie ") || l.starts_with("stick")),
        "no stickiness: replicas share everything through the database"
    );
}
