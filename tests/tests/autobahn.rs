//! WebSocket conformance: the Autobahn|Testsuite fuzzing client (sections 1–7 and 9) against
//! `/ws-echo`, which runs the same WebSocket stack, limits and close codes as `/ws` and echoes.
//! Every case's behaviour must match `tests/autobahn/expected.json`; `scripts/test.sh` installs
//! the suite (`scripts/autobahn_setup.sh`, into /tmp/abts or `$SHARDBUS_AUTOBAHN`).
// Tests: a failed expectation must fail loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use shardbus_tests::TestServer;

fn suite_root() -> PathBuf {
    let root =
        PathBuf::from(std::env::var("SHARDBUS_AUTOBAHN").unwrap_or_else(|_| "/tmp/abts".into()));
    assert!(
        root.join("env.sh").exists(),
        "the Autobahn suite is not installed in {}: run scripts/test.sh (or scripts/autobahn_setup.sh)",
        root.display()
    );
    root
}

/// Each case's behaviour, from a fuzzingclient report index.
fn behaviours(index: &serde_json::Value) -> BTreeMap<String, String> {
    index["shardbus"]
        .as_object()
        .expect("a report for agent shardbus")
        .iter()
        .map(|(case, result)| {
            let behaviour = result["behavior"].as_str().unwrap_or("?");
            let close = result["behaviorClose"].as_str().unwrap_or("?");
            (case.clone(), format!("{behaviour}/{close}"))
        })
        .collect()
}

#[test]
fn the_websocket_stack_passes_autobahn_sections_1_to_7_and_9() {
    let root = suite_root();
    let server = TestServer::with(|c| {
        c.http.websocket_echo = true;
        // Section 9 sends messages of up to 16 MiB.
        c.limits.max_payload = 16 << 20;
    });
    let work = std::env::temp_dir().join(format!("shardbus-autobahn-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let spec = serde_json::json!({
        "outdir": work.join("reports").display().to_string(),
        "servers": [{ "agent": "shardbus", "url": format!("ws://{}/ws-echo", server.http) }],
        "cases": ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*"],
        "exclude-cases": [],
        "exclude-agent-cases": {},
    });
    std::fs::write(work.join("fuzzingclient.json"), spec.to_string()).unwrap();
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". {}/env.sh && wstest -m fuzzingclient -s fuzzingclient.json > wstest.log 2>&1",
            root.display()
        ))
        .current_dir(&work)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "wstest failed: see {}",
        work.join("wstest.log").display()
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("reports").join("index.json")).unwrap())
            .unwrap();
    let got = behaviours(&index);
    let expected: BTreeMap<String, String> =
        serde_json::from_str(include_str!("../autobahn/expected.json")).unwrap();
    let differences: Vec<String> = expected
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|case| expected.get(*case) != got.get(*case))
        .map(|case| {
            format!(
                "{case}: expected {:?}, got {:?}",
                expected.get(case),
                got.get(case)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "Autobahn results differ from tests/autobahn/expected.json (reports in {}):\n{}",
        work.display(),
        differences.join("\n")
    );
    let _ = std::fs::remove_dir_all(&work);
}
