//! Keeps PROTOCOL.md true: its error-code table, its op table and its byte examples are parsed
//! here and compared with the code.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // tests may panic

use shardbus_protocol::error_code::Disposition;
use shardbus_protocol::{CODE_TABLE, Fields, Frame, Op, encode};

fn spec() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md")).unwrap()
}

fn table_rows<'a>(spec: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    let section = spec.split(heading).nth(1).unwrap();
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}

#[test]
fn error_code_table_matches_the_code() {
    let spec = spec();
    let rows = table_rows(&spec, "## 5. Error codes");
    assert_eq!(rows.len(), CODE_TABLE.len(), "one row per code");
    for (row, info) in rows.iter().zip(CODE_TABLE) {
        assert_eq!(row[0].parse::<u16>().unwrap(), info.code.0);
        assert_eq!(row[1].trim_matches('`'), info.name);
        let closes = info.disposition == Disposition::Close;
        assert_eq!(
            row[2],
            if closes { "close" } else { "open" },
            "{}",
            info.name
        );
        assert_eq!(
            row[3],
            if info.temporary {
                "temporary"
            } else {
                "terminal"
            },
            "{}",
            info.name
        );
    }
}

#[test]
fn op_table_matches_the_code() {
    let spec = spec();
    let rows = table_rows(&spec, "## 3. Ops");
    assert_eq!(rows.len(), Op::ALL.len());
    for (row, op) in rows.iter().zip(Op::ALL) {
        assert_eq!(row[0], op.name());
        let hex =
            u8::from_str_radix(row[1].trim_matches('`').trim_start_matches("0x"), 16).unwrap();
        assert_eq!(hex, op as u8, "{}", op.name());
        let size: usize = row[3]
            .rsplit('(')
            .next()
            .unwrap()
            .trim_end_matches(')')
            .parse()
            .unwrap();
        assert_eq!(size, Fields::wire_len(op), "{} fixed fields", op.name());
    }
}

/// The hex bytes of the code block that follows `marker`.
fn example_bytes(spec: &str, marker: &str) -> Vec<u8> {
    let after = spec.split(marker).nth(1).unwrap();
    let block = after.split("```").nth(1).unwrap();
    block
        .lines()
        .flat_map(|line| {
            line.split_whitespace()
                .take_while(|t| t.len() == 2 && t.chars().all(|c| c.is_ascii_hexdigit()))
                .map(|t| u8::from_str_radix(t, 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn encoded(frame: &Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out).unwrap();
    out
}

#[test]
fn byte_examples_match_the_encoder() {
    let spec = spec();
    let publish = Frame::new(Fields::Pub)
        .with_topic("foo.bar")
        .with_payload(b"hello");
    assert_eq!(
        example_bytes(&spec, "PUB of `hello` on `foo.bar`"),
        encoded(&publish)
    );
    let delivery = Frame::new(Fields::Msg {
        sid: 3,
        seq: 9,
        reply: 0,
    })
    .with_topic("foo.bar")
    .with_payload(b"hello");
    assert_eq!(
        example_bytes(&spec, "MSG delivering it to sid 3"),
        encoded(&delivery)
    );
}

#[test]
fn the_browser_clients_terminal_closes_are_the_tables() {
    let js = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../clients/js/shardbus.js"
    ))
    .unwrap();
    let line = js
        .lines()
        .find(|l| l.contains("TERMINAL_CLOSES = new Set(["))
        .expect("the set in shardbus.js");
    let listed: Vec<u16> = line
        .split(['[', ']'])
        .nth(1)
        .unwrap()
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let terminal: Vec<u16> = CODE_TABLE
        .iter()
        .filter(|c| c.code.closes_connection() && !c.temporary)
        .map(|c| c.code.0)
        .collect();
    assert_eq!(listed, terminal);
}
