//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol for the page
//! tests: open a URL, run JavaScript in the page and read its value, set the viewport, take a
//! screenshot. The browser is killed and its profile removed when the test ends.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::WebSocket;
use tungstenite::stream::MaybeTlsStream;

use crate::PATIENCE;

/// A browser with one page under control.
pub struct Browser {
    child: Child,
    profile: std::path::PathBuf,
    page: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

/// How a test runs the browser: headless, quiet, no first-run work.
pub const HEADLESS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
];

/// The browser's path: `$SHARDBUS_CHROMIUM` or Debian's.
pub fn chromium() -> String {
    let path = std::env::var("SHARDBUS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: the README's test command (scripts/test.sh) installs Debian's chromium"
    );
    path
}

impl Browser {
    /// Starts the browser on a blank page and takes control of it.
    pub fn start() -> Browser {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = std::env::temp_dir().join(format!("shardbus-cdp-{}-{n}", std::process::id()));
        let mut child = Command::new(chromium())
            .args(HEADLESS)
            .args(["--hide-scrollbars", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on stderr.
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("chromium exited before saying where DevTools listens")
                .unwrap();
            if let Some(at) = line.find("ws://127.0.0.1:") {
                let rest = &line[at + "ws://127.0.0.1:".len()..];
                let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                break port;
            }
        };
        // Keep draining stderr so the browser never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let page_url = page_target(port);
        let (page, _) = tungstenite::connect(page_url.as_str()).unwrap();
        let mut browser = Browser {
            child,
            profile,
            page,
            next_id: 1,
        };
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    /// Calls DevTools method `method`; returns its result (events on the way are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params}).to_string();
        self.page
            .send(tungstenite::Message::Text(request.into()))
            .unwrap();
        loop {
            let message = self.page.read().unwrap();
            let tungstenite::Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                if let Some(error) = value.get("error") {
                    panic!("{method}: {error}");
                }
                return value["result"].clone();
            }
        }
    }

    /// Opens `url` in the page.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// Runs `expression` in the page (awaiting a promise) and returns its value as JSON.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            return json!({"exception": exception.to_string()});
        }
        result["result"]["value"].clone()
    }

    /// Waits (within twice the tests' patience: a browser on 2 busy cores is slow) until
    /// `expression` is true in the page.
    pub fn wait_for(&mut self, what: &str, expression: &str) {
        let deadline = Instant::now() + PATIENCE * 2;
        loop {
            if self.eval(expression) == Value::Bool(true) {
                return;
            }
            if Instant::now() >= deadline {
                let page = self.eval("document.body ? document.body.innerText.slice(0, 3000) : ''");
                panic!(
                    "timed out waiting for {what}; the page says:\n{}",
                    page.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Makes the page `width`×`height` CSS pixels (`mobile`: a phone's viewport).
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// A PNG of the page at `width`×`height` (a desktop viewport), once it is laid out so.
    pub fn picture(&mut self, width: u32, height: u32) -> Vec<u8> {
        self.viewport(width, height, false);
        self.wait_for(
            "the page's new width",
            &format!("document.documentElement.clientWidth >= {width}"),
        );
        let png = self.screenshot();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        png
    }

    /// A PNG of the page as it is now.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let result = self.call("Page.captureScreenshot", json!({"format": "png"}));
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(result["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The DevTools WebSocket URL of the browser's first page.
fn page_target(port: u16) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(listing) = devtools_get(port, "/json/list") {
            let targets: Value = serde_json::from_str(&listing).unwrap_or_default();
            let page = targets.as_array().and_then(|targets| {
                targets
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
            });
            if let Some(page) = page {
                return page;
            }
        }
        assert!(Instant::now() < deadline, "chromium listed no page");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The body of `GET path` from the DevTools HTTP endpoint (which keeps connections open: the
/// body is read to its `Content-Length`).
fn devtools_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let Some(split) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..split]
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        let body = &bytes[split + 4..];
        if body.len() >= length {
            return Some(String::from_utf8_lossy(&body[..length]).into_owned());
        }
    }
}

/// A JavaScript expression true when the page's element `id` has `text` in it (for
/// [`Browser::wait_for`]).
pub fn shows(id: &str, text: &str) -> String {
    format!("(document.getElementById({id:?})?.textContent || '').includes({text:?})")
}

/// With `SHARDBUS_SCREENSHOTS=docs`, writes each `(name, bytes)` into `dir` (what a README
/// shows, taken by its test); without, nothing.
pub fn keep_for_docs(dir: &std::path::Path, files: &[(&str, &[u8])]) {
    if std::env::var("SHARDBUS_SCREENSHOTS").as_deref() != Ok("docs") {
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
