//! Replays every committed fuzz input (`fuzz/corpus/*` and `fuzz/regressions/*`) through the same
//! checks the fuzz targets run, so `cargo test` keeps what fuzzing found fixed.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/TARGET` and `fuzz/regressions/TARGET`.
fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable corpus dir").path();
            let data = std::fs::read(&path).expect("readable corpus file");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its check",
                path.display()
            );
            count += 1;
        }
    }
    assert!(
        count > 0,
        "no committed corpus for {target} under {}",
        root.display()
    );
}

#[test]
fn packet_view_corpus() {
    replay("packet_view", checks::packet_view);
}

#[test]
fn message_decode_corpus() {
    replay("message_decode", checks::message);
}

#[test]
fn match_decode_corpus() {
    replay("match_decode", checks::match_);
}

#[test]
fn action_decode_corpus() {
    replay("action_decode", checks::actions);
}

#[test]
fn stream_framing_corpus() {
    replay("stream_framing", checks::framing);
}
