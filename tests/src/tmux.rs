//! `Tmux`: a tmux server of the test's own (its own socket), running terminal programs in
//! sessions of a fixed size, so a test can type into a real terminal and read its screen.

use std::process::Command;

/// A tmux server with one session per program started.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A new server, named after `label` and this process (parallel tests do not meet).
    pub fn new(label: &str) -> Tmux {
        Tmux {
            socket: format!("shardbus-{label}-{}", std::process::id()),
        }
    }

    /// Starts `command` in session `session`, a `width`×`height` terminal.
    pub fn run(&self, session: &str, (width, height): (u16, u16), command: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "new-session", "-d", "-s", session])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg(command)
            .status()
            .expect("tmux (scripts/test.sh installs it)");
        assert!(status.success(), "tmux new-session {session}");
    }

    /// What session `session`'s terminal shows now.
    pub fn screen(&self, session: &str) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends `keys` to session `session` (tmux key names: `Enter`, `Tab`, `C-c`, or text).
    pub fn keys(&self, session: &str, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", session])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys {session}");
    }

    /// Types `text` literally (no key names), then Enter.
    pub fn type_line(&self, session: &str, text: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", session, "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys {session}");
        self.keys(session, &["Enter"]);
    }

    /// Whether session `session`'s program still runs.
    pub fn running(&self, session: &str) -> bool {
        Command::new("tmux")
            .args(["-L", &self.socket, "has-session", "-t", session])
            .output()
            .is_ok_and(|out| out.status.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
