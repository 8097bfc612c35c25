//! The live screen of `top` (ratatui): the shards' rates and the total, the busiest
//! connections, services and errors, redrawn at every look. Keys: `q` (or Esc, Ctrl-C) quits,
//! `s` changes the sort key, `+` and `-` the interval.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table};
use shardbus_protocol::client::{Client, ClientError};

use super::TopOptions;
use super::sample::Sample;
use super::view::{self, View};

const MIN_INTERVAL: Duration = Duration::from_millis(250);
const MAX_INTERVAL: Duration = Duration::from_secs(10);

/// Runs the live screen until a quit key.
pub fn run(client: &Client, options: &TopOptions) -> Result<(), ClientError> {
    let mut terminal = ratatui::init();
    let result = live(client, options, &mut terminal);
    ratatui::restore();
    result
}

fn live(
    client: &Client,
    options: &TopOptions,
    terminal: &mut ratatui::DefaultTerminal,
) -> Result<(), ClientError> {
    let (mut sort, mut interval) = (options.sort, options.interval);
    let mut before = Sample::take(client, options.max_connections)?;
    let mut now = before.clone();
    let mut next = Instant::now() + interval;
    loop {
        let view = View::between(&before, &now, sort, options.limit);
        let hints = format!(
            " q quits · s sorts (by {}) · +/- interval ({:.1} s) ",
            sort.name(),
            interval.as_secs_f64()
        );
        terminal
            .draw(|frame| draw(frame, &view, &hints))
            .map_err(ClientError::Io)?;
        let wait = next.saturating_duration_since(Instant::now());
        if event::poll(wait).map_err(ClientError::Io)? {
            if let Event::Key(key) = event::read().map_err(ClientError::Io)? {
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                match key.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(());
                    }
                    KeyCode::Char('s') => sort = sort.next(),
                    KeyCode::Char('+') => interval = (interval * 2).min(MAX_INTERVAL),
                    KeyCode::Char('-') => interval = (interval / 2).max(MIN_INTERVAL),
                    _ => {}
                }
            }
            continue;
        }
        before = now;
        now = Sample::take(client, options.max_connections)?;
        next = Instant::now() + interval;
    }
}

/// Draws `view` on the whole frame, `hints` in its bottom border.
pub fn draw(frame: &mut Frame<'_>, view: &View, hints: &str) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let shard_rows = view.shards.len() as u16 + 3;
    let [shards, connections, bottom] = Layout::vertical([
        Constraint::Length(shard_rows + 2),
        Constraint::Min(5),
        Constraint::Length(8),
    ])
    .areas(frame.area());
    let [services_area, errors_area] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);

    let mut rows: Vec<Row<'_>> = view
        .shards
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let mut cells = vec![format!("shard {i}")];
            cells.extend(view::shard_cells(line));
            Row::new(cells)
        })
        .collect();
    let mut total = vec!["total".to_owned()];
    total.extend(view::shard_cells(&view.total));
    rows.push(Row::new(total).style(bold));
    let mut header = vec!["".to_owned()];
    header.extend(view::SHARD_HEADER.iter().map(|h| (*h).to_owned()));
    let widths = [8, 12, 12, 12, 12, 8, 8, 7].map(Constraint::Length);
    let title = if view.seconds < 0.01 {
        " shardbus top · first look: rates from the next ".to_owned()
    } else {
        format!(" shardbus top · rates over {:.1} s ", view.seconds)
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(bold))
            .block(
                Block::bordered()
                    .title(title)
                    .title_bottom(hints.to_owned()),
            ),
        shards,
    );

    let block = Block::bordered().title(format!(
        " connections by {} ({} listed) ",
        view.sort.name(),
        view.connections_listed
    ));
    match &view.connections {
        Some(lines) => {
            let rows = lines.iter().map(|line| Row::new(view::conn_cells(line)));
            let widths = [16, 5, 16, 12, 12, 12, 12, 10].map(Constraint::Length);
            let header = Row::new(view::CONN_HEADER.map(str::to_owned)).style(bold);
            frame.render_widget(
                Table::new(rows, widths).header(header).block(block),
                connections,
            );
        }
        None => frame.render_widget(
            Paragraph::new("not listed: the connections listing needs an admin identity")
                .block(block),
            connections,
        ),
    }

    let block = Block::bordered().title(" services ");
    match &view.services {
        Some(services) => {
            let rows = services.iter().map(|s| Row::new(view::service_cells(s)));
            let widths = [20, 9, 7, 10, 8, 8].map(Constraint::Length);
            let header = Row::new(view::SERVICE_HEADER.map(str::to_owned)).style(bold);
            frame.render_widget(
                Table::new(rows, widths).header(header).block(block),
                services_area,
            );
        }
        None => frame.render_widget(
            Paragraph::new("not listed: the services report needs an admin identity").block(block),
            services_area,
        ),
    }
    let text: Vec<String> = if view.errors.is_empty() {
        vec!["none".to_owned()]
    } else {
        view.errors
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect()
    };
    let slow = format!(
        "slow consumers: {} (+{} since the last look)",
        view.total.now.slow_consumers, view.total.new_slow_consumers
    );
    let mut lines = vec![slow];
    lines.extend(text);
    frame.render_widget(
        Paragraph::new(lines.join("\n")).block(Block::bordered().title(" errors sent ")),
        errors_area,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::super::view::SortKey;
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    #[test]
    fn the_screen_shows_shards_connections_services_and_errors() {
        let (before, after) = super::super::view::tests::samples();
        let view = View::between(&before, &after, SortKey::MsgsIn, 10);
        let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
        terminal
            .draw(|frame| draw(frame, &view, " q quits "))
            .unwrap();
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|cell| cell.symbol())
            .collect();
        for expected in [
            "shard 0",
            "shard 1",
            "total",
            "loud",
            "echo",
            "NO_RESPONDERS: 3",
            "q quits",
        ] {
            assert!(screen.contains(expected), "{expected} missing");
        }
    }
}
