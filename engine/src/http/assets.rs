//! The files the HTTP edge serves to browsers, built into the binary (the machine may be
//! offline): the JavaScript client (`clients/js/shardbus.js`, the JSON mapping of PROTOCOL.md
//! §9), the dashboard (built only on that client) with its vendored chart library (uPlot,
//! `clients/js/vendor/uplot`), and the demo pages.

const JS: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Each file: its path, its bytes, its content type.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/js/shardbus.js",
        include_str!("../../../clients/js/shardbus.js"),
        JS,
    ),
    (
        "/dashboard",
        include_str!("../../../clients/js/dashboard.html"),
        HTML,
    ),
    (
        "/js/dashboard.js",
        include_str!("../../../clients/js/dashboard.js"),
        JS,
    ),
    (
        "/js/vendor/uplot/uPlot.esm.js",
        include_str!("../../../clients/js/vendor/uplot/uPlot.esm.js"),
        JS,
    ),
    (
        "/js/vendor/uplot/uPlot.min.css",
        include_str!("../../../clients/js/vendor/uplot/uPlot.min.css"),
        CSS,
    ),
    ("/demo", include_str!("../../../clients/js/demo.html"), HTML),
    // A chat room (rooms, presence, join and leave, recovery).
    (
        "/demo/chat",
        include_str!("../../../clients/js/chat.html"),
        HTML,
    ),
];

/// The file at `path`: its bytes and content type.
pub(crate) fn find(path: &str) -> Option<(&'static [u8], &'static str)> {
    ASSETS
        .iter()
        .find(|(at, _, _)| *at == path)
        .map(|(_, body, kind)| (body.as_bytes(), *kind))
}
