//! The layering of the crate, checked: the test reads the sources and fails when a module
//! imports from a layer above its own, or when two modules import each other. It is the rule of
//! [`crate`]'s `# Layout` section made executable (a fitness function in the spirit of ArchUnit).
//!
//! A module is a top-level module of the crate (`src/<name>.rs` or `src/<name>/`). An import is
//! any `crate::<module>` path outside comments and outside a file's unit tests.

/// The layers, bottom to top. A module may use modules of its own layer or of layers below; two
/// modules never use each other.
const LAYERS: &[&[&str]] = &[
    // Foundation: no domain, usable by anything.
    &[
        "clock", "secret", "blocking", "shutdown", "fsutil", "report", "vocab",
    ],
    // The setup repository's files.
    &["setup"],
    // Records.
    &["store"],
    &["audit"],
    // Domain rules.
    &["auth"],
    // The live configuration.
    &["reload"],
    // The relying party.
    &["oidc"],
    // What request handlers share.
    &["state"],
    // The HTTP surface.
    &["http"],
    // The daemon.
    &["server"],
    // Entry points.
    &["commands", "cli", "fuzz_checks", "layering"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `(from, to, file)` import between two top-level modules.
fn imports() -> Vec<(String, String, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.map(|e| e.path()).unwrap_or_default();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap_or(&file);
        let mut parts = relative.iter().map(|p| p.to_string_lossy().into_owned());
        let first = parts.next().unwrap_or_default();
        if first == "bin" || first == "lib.rs" {
            continue;
        }
        let from = first.trim_end_matches(".rs").to_owned();
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            let code = line.trim_start();
            if code.starts_with("#[cfg(test)]")
                && lines
                    .peek()
                    .is_some_and(|next| next.trim_start().contains("mod tests"))
            {
                break;
            }
            if code.starts_with("//") {
                continue;
            }
            let code = code.split("//").next().unwrap_or_default();
            for (at, _) in code.match_indices("crate::") {
                let to: String = code[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from {
                    found.push((from.clone(), to, relative.display().to_string()));
                }
            }
        }
    }
    found
}

#[test]
fn every_import_goes_down_and_no_two_modules_use_each_other() {
    let imports = imports();
    assert!(
        imports.len() > 50,
        "the sources were read: {}",
        imports.len()
    );
    let mut problems = Vec::new();
    for (from, to, file) in &imports {
        match (layer_of(from), layer_of(to)) {
            (None, _) => problems.push(format!("{from} is in no layer ({file})")),
            (_, None) => problems.push(format!("{to} is in no layer ({file})")),
            (Some(a), Some(b)) if b > a => {
                problems.push(format!("{file}: {from} imports {to}, a layer above it"))
            }
            _ => {}
        }
        if imports.iter().any(|(f, t, _)| f == to && t == from) {
            problems.push(format!("{from} and {to} import each other ({file})"));
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "layering:\n{}", problems.join("\n"));
}

/// The HTTP resources: one file per resource, each with its routes. They share the lower http
/// modules (session, login, page, error, body, client, auth) and never import each other.
const HTTP_RESOURCES: &[&str] = &[
    "accounts",
    "api",
    "assets",
    "audit",
    "device",
    "device_pages",
    "health",
    "keys",
    "pages",
    "settings",
    "sso",
    "users",
];

#[test]
fn http_resources_never_import_each_other() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut problems = Vec::new();
    for resource in HTTP_RESOURCES {
        let text = std::fs::read_to_string(dir.join(format!("{resource}.rs")))
            .unwrap_or_else(|e| panic!("src/http/{resource}.rs: {e}"));
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for other in HTTP_RESOURCES.iter().filter(|other| *other != resource) {
                if line.contains(&format!("super::{other}::"))
                    || line.contains(&format!("crate::http::{other}::"))
                {
                    problems.push(format!(
                        "http/{resource}.rs imports http/{other}.rs: {line}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
