//! The terminal screen (ratatui): the conversations on the left (rooms `#`, direct messages
//! `@`, unread counts), the one on screen in the middle, its members on the right, the line
//! being typed at the bottom. Enter sends it, Tab shows the next conversation, Esc or Ctrl-C
//! quits.

use std::time::Duration;

use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, Paragraph, Wrap};

use crate::chat::Chat;
use crate::conversation::Kind;
use crate::input::{HELP, Input};

/// How often the screen takes in what arrived while nothing is typed.
const TICK: Duration = Duration::from_millis(100);

/// Runs the screen until the user quits.
///
/// # Errors
/// When the terminal cannot be drawn on or read.
pub fn run(chat: &mut Chat) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    let result = live(chat, &mut terminal);
    ratatui::restore();
    result
}

fn live(chat: &mut Chat, terminal: &mut ratatui::DefaultTerminal) -> std::io::Result<()> {
    let mut typed = String::new();
    loop {
        chat.take_events();
        terminal.draw(|frame| draw(frame, chat, &typed))?;
        if !event::poll(TICK)? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        match key.code {
            KeyCode::Esc => return Ok(()),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
            KeyCode::Tab => chat.next(),
            KeyCode::Backspace => {
                typed.pop();
            }
            KeyCode::Enter => {
                let line = std::mem::take(&mut typed);
                if !obey(chat, Input::parse(&line)) {
                    return Ok(());
                }
            }
            KeyCode::Char(c) => typed.push(c),
            _ => {}
        }
    }
}

/// Does what `input` asks; `false` to quit.
pub fn obey(chat: &mut Chat, input: Input) -> bool {
    match input {
        Input::Say(text) => chat.say(&text),
        Input::Join(room) => chat.join(&room),
        Input::Leave(room) => chat.leave(room.as_deref()),
        Input::Who => chat.who(),
        Input::Msg { user, text } => chat.direct(&user, &text),
        Input::Help => chat.notice(HELP),
        Input::Wrong(why) => chat.notice(&why),
        Input::Quit => return false,
        Input::Nothing => {}
    }
    true
}

/// Draws the chat on the whole frame, `typed` in the input line.
pub fn draw(frame: &mut Frame<'_>, chat: &Chat, typed: &str) {
    let [main, input] =
        Layout::vertical([Constraint::Min(5), Constraint::Length(3)]).areas(frame.area());
    let [rooms, lines, members] = Layout::horizontal([
        Constraint::Length(22),
        Constraint::Min(20),
        Constraint::Length(22),
    ])
    .areas(main);
    let bold = Style::default().add_modifier(Modifier::BOLD);

    let tabs: Vec<ListItem<'_>> = chat
        .conversations
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let item = ListItem::new(c.title());
            if i == chat.current {
                item.style(bold.add_modifier(Modifier::REVERSED))
            } else {
                item
            }
        })
        .collect();
    frame.render_widget(
        List::new(tabs).block(Block::bordered().title(" conversations ")),
        rooms,
    );

    let shown = chat.conversations.get(chat.current);
    let title = shown.map_or_else(|| " /join ROOM ".to_owned(), |c| format!(" {} ", c.title()));
    let height = usize::from(lines.height.saturating_sub(2));
    let text: Vec<Line<'_>> = shown
        .map(|c| {
            let skip = c.lines.len().saturating_sub(height);
            c.lines
                .iter()
                .skip(skip)
                .map(|line| match line.from.as_str() {
                    "" => Line::from(Span::styled(
                        format!("* {}", line.text),
                        Style::default().add_modifier(Modifier::ITALIC),
                    )),
                    from => Line::from(vec![
                        Span::styled(format!("{from}: "), bold),
                        Span::raw(line.text.clone()),
                    ]),
                })
                .collect()
        })
        .unwrap_or_default();
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title)),
        lines,
    );

    let (names, title) = match shown {
        Some(c) if c.kind == Kind::Room => {
            (c.member_names(), format!(" here ({}) ", c.members.len()))
        }
        _ => (Vec::new(), " here ".to_owned()),
    };
    let names: Vec<ListItem<'_>> = names.into_iter().map(ListItem::new).collect();
    frame.render_widget(
        List::new(names).block(Block::bordered().title(title)),
        members,
    );

    let state = if chat.connected() {
        "online"
    } else {
        "reconnecting…"
    };
    frame.render_widget(
        Paragraph::new(format!("> {typed}")).block(
            Block::bordered()
                .title(format!(" {} · {state} ", chat.me))
                .title_bottom(" Enter sends · Tab next · /help · Esc quits "),
        ),
        input,
    );
}
