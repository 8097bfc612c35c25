//! What a line typed into the chat means: a message to the conversation on screen, or one of
//! the slash commands (`/join`, `/leave`, `/who`, `/msg`, `/help`, `/quit`).

/// A line the user typed, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Say this in the conversation on screen.
    Say(String),
    /// Join a room (and show it).
    Join(String),
    /// Leave a room (the one on screen when none is named).
    Leave(Option<String>),
    /// List the members of the room on screen.
    Who,
    /// A direct message to a user.
    Msg { user: String, text: String },
    /// List the commands.
    Help,
    /// Quit.
    Quit,
    /// Nothing to do (an empty line).
    Nothing,
    /// A command that needs something else: what to tell the user.
    Wrong(String),
}

/// The commands, as `/help` lists them.
pub const HELP: &str =
    "/join ROOM · /leave [ROOM] · /who · /msg USER TEXT · /quit · Tab: next conversation";

impl Input {
    /// Understands `line`.
    pub fn parse(line: &str) -> Input {
        let line = line.trim();
        if line.is_empty() {
            return Input::Nothing;
        }
        let Some(command) = line.strip_prefix('/') else {
            return Input::Say(line.to_owned());
        };
        let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
        let rest = rest.trim();
        match name {
            "join" | "j" if !rest.is_empty() && !rest.contains(' ') => Input::Join(rest.to_owned()),
            "join" | "j" => Input::Wrong("usage: /join ROOM".into()),
            "leave" | "part" if rest.contains(' ') => Input::Wrong("usage: /leave [ROOM]".into()),
            "leave" | "part" => Input::Leave((!rest.is_empty()).then(|| rest.to_owned())),
            "who" | "w" => Input::Who,
            "msg" | "m" => match rest.split_once(' ') {
                Some((user, text)) if !text.trim().is_empty() => Input::Msg {
                    user: user.to_owned(),
                    text: text.trim().to_owned(),
                },
                _ => Input::Wrong("usage: /msg USER TEXT".into()),
            },
            "help" | "h" | "?" => Input::Help,
            "quit" | "q" | "exit" => Input::Quit,
            other => Input::Wrong(format!("no command /{other} ({HELP})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_commands_are_understood() {
        assert_eq!(
            Input::parse(" hello there "),
            Input::Say("hello there".into())
        );
        assert_eq!(
            Input::parse("/join chat.ops"),
            Input::Join("chat.ops".into())
        );
        assert_eq!(Input::parse("/leave"), Input::Leave(None));
        assert_eq!(
            Input::parse("/leave chat.ops"),
            Input::Leave(Some("chat.ops".into()))
        );
        assert_eq!(Input::parse("/who"), Input::Who);
        assert_eq!(
            Input::parse("/msg bob  lunch at one?"),
            Input::Msg {
                user: "bob".into(),
                text: "lunch at one?".into()
            }
        );
        assert_eq!(Input::parse("/quit"), Input::Quit);
        assert_eq!(Input::parse("   "), Input::Nothing);
    }

    #[test]
    fn a_command_missing_its_arguments_says_how_to_use_it() {
        assert_eq!(
            Input::parse("/join"),
            Input::Wrong("usage: /join ROOM".into())
        );
        assert_eq!(
            Input::parse("/msg bob"),
            Input::Wrong("usage: /msg USER TEXT".into())
        );
        assert!(matches!(Input::parse("/dance"), Input::Wrong(w) if w.contains("/dance")));
    }
}
