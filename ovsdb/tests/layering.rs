//! Architecture invariants of the crate, checked on its sources: the protocol core is sans-IO
//! (only `client` may use tokio or sockets), and every file opens with its `//!` line.

use std::path::Path;

fn sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = vec![];
    for entry in std::fs::read_dir(&dir).expect("src dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            out.push((name, std::fs::read_to_string(&path).expect("source")));
        }
    }
    out
}

#[test]
fn core_is_sans_io() {
    for (name, text) in sources() {
        if name == "client.rs" || name == "lib.rs" {
            continue;
        }
        for banned in [
            "tokio",
            "std::net",
            "std::os::unix",
            "TcpStream",
            "UnixStream",
            "std::thread",
        ] {
            assert!(
                !text.contains(banned),
                "{name} uses {banned}: only client.rs may do I/O"
            );
        }
    }
}

#[test]
fn every_file_says_what_it_owns() {
    for (name, text) in sources() {
        assert!(text.starts_with("//! "), "{name} lacks its //! line");
    }
}
