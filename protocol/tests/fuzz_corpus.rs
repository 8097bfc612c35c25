//! Replays the committed fuzz corpus (`protocol/fuzz/corpus/*`) through the fuzz targets' own
//! invariants, so `cargo test` on stable checks every input the fuzzer kept.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // tests may panic

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            check(&std::fs::read(&path).unwrap());
            count += 1;
        }
    }
    count
}

#[test]
fn frame_corpus_holds_its_invariants() {
    assert!(replay("frame", checks::check_frames) > 0, "no frame corpus");
}

#[test]
fn container_corpus_holds_its_invariants() {
    assert!(
        replay("container", checks::check_container) > 0,
        "no container corpus"
    );
}

#[test]
fn json_corpus_holds_its_invariants() {
    assert!(replay("json", checks::check_json) > 0, "no json corpus");
}
