//! Tidy checks on the workspace itself: the layering invariants of ARCHITECTURE.md and the
//! `//!` line every source file opens with (rust-analyzer's tidy test, in miniature).

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testbed crate lives one level below the workspace root")
        .to_path_buf()
}

/// Names of the `[dependencies]` of a manifest (not dev- or build-dependencies).
fn dependencies(manifest: &Path) -> Vec<String> {
    let text =
        fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps {
            if let Some((name, _)) = line.split_once('=') {
                let name = name.trim().split('.').next().unwrap_or("").trim();
                if !name.is_empty() && !name.starts_with('#') {
                    deps.push(name.to_string());
                }
            }
        }
    }
    deps
}

/// Crates that open sockets, run an async runtime or touch the network.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "async-std",
    "smol",
    "socket2",
    "hyper",
    "axum",
    "reqwest",
    "tower",
    "nix",
];

#[test]
fn sans_io_crates_have_no_io_dependencies() {
    let root = workspace_root();
    for krate in ["ofproto", "apps"] {
        let deps = dependencies(&root.join(krate).join("Cargo.toml"));
        for dep in &deps {
            assert!(
                !IO_CRATES.contains(&dep.as_str()),
                "{krate} depends on {dep}: {krate} must stay free of I/O (ARCHITECTURE.md)"
            );
        }
    }
    // topology may use tokio's synchronisation primitives only (a change feed), never its runtime.
    let manifest = fs::read_to_string(root.join("topology/Cargo.toml")).expect("topology manifest");
    for dep in dependencies(&root.join("topology/Cargo.toml")) {
        if dep == "tokio" {
            let line = manifest
                .lines()
                .find(|l| l.trim_start().starts_with("tokio"))
                .unwrap_or_default();
            for forbidden in ["full", "net", "rt", "io-util", "fs", "process"] {
                assert!(
                    !line.contains(&format!("\"{forbidden}")),
                    "topology enables tokio feature {forbidden}: it must do no I/O"
                );
            }
        } else {
            assert!(
                !IO_CRATES.contains(&dep.as_str()),
                "topology depends on {dep}: it must do no I/O towards switches"
            );
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "corpus" && name != "artifacts"
            {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_says_what_it_owns() {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in [
        "ofproto",
        "ovsdb",
        "topology",
        "apps",
        "controller",
        "tests",
    ] {
        rust_files(&root.join(krate), &mut files);
    }
    assert!(
        files.len() > 5,
        "found too few source files under {}",
        root.display()
    );
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading `//!` line: {missing:?}"
    );
}
