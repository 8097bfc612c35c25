//! The files the HTTP edge serves to browsers: the JavaScript client (`clients/js/shardbus.js`,
//! the JSON mapping of PROTOCOL.md §9) and demo pages using it, built into the binary.

/// `GET /js/shardbus.js`.
pub(crate) const CLIENT_JS: &str = include_str!("../../../clients/js/shardbus.js");

/// `GET /demo`.
pub(crate) const DEMO_HTML: &str = include_str!("../../../clients/js/demo.html");

/// `GET /demo/chat`: a chat room (rooms, presence, join and leave, recovery).
pub(crate) const CHAT_HTML: &str = include_str!("../../../clients/js/chat.html");
