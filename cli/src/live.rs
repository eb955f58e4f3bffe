//! The live view of `ebpf-pack run --interval SECS` on a terminal: like `top`, the screen shows the
//! latest complete round of map dumps (ebpf-run prints one every SECS seconds and ends each with
//! `{"dump":"interval"}`), under a title line with the run's time and counts, and the last events
//! below them. When the run ends the screen is left and the final round is printed as plain lines, so
//! it stays in the terminal's scrollback. [`LiveView`] composes frames (pure, unit-tested);
//! [`Screen`] puts them on the terminal with crossterm (alternate screen, no raw mode: Ctrl-C still
//! raises SIGINT and stops the board's loader).

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use crossterm::{cursor, queue, style, terminal};

use crate::render::LineKind;

/// Event lines kept for the view's lower part.
const EVENT_LINES: usize = 200;
/// Redraws for events alone come at most this often; a complete round redraws at once.
const EVENT_REDRAW: Duration = Duration::from_millis(250);

/// What the live view shows; fed with the renderer's lines and their kinds.
#[derive(Debug)]
pub struct LiveView {
    title: String,
    every_secs: u64,
    /// The last complete round of map dumps, as rendered lines.
    snapshot: Vec<String>,
    /// The round being received.
    pending: Vec<String>,
    /// Summaries (printed/lost counts, unreadable maps) and lines that were not ebpf-run's JSON.
    notes: Vec<String>,
    events: VecDeque<String>,
    event_count: u64,
    rounds: u64,
    started: Instant,
    last_draw: Option<Instant>,
}

impl LiveView {
    /// A view titled `title` (the bundle and the board) for dumps every `every_secs` seconds.
    pub fn new(title: impl Into<String>, every_secs: u64, started: Instant) -> LiveView {
        LiveView {
            title: title.into(),
            every_secs,
            snapshot: Vec::new(),
            pending: Vec::new(),
            notes: Vec::new(),
            events: VecDeque::new(),
            event_count: 0,
            rounds: 0,
            started,
            last_draw: None,
        }
    }

    /// Takes the rendered `lines` of one line of output of kind `kind`; true when the screen should be
    /// redrawn now (a round completed, or events waited long enough).
    pub fn take(&mut self, kind: LineKind, lines: Vec<String>, now: Instant) -> bool {
        match kind {
            LineKind::MapEntry => self.pending.extend(lines),
            LineKind::RoundEnd => {
                self.snapshot = std::mem::take(&mut self.pending);
                self.rounds += 1;
                return true;
            }
            LineKind::Event => {
                self.event_count += 1;
                for l in lines {
                    if self.events.len() == EVENT_LINES {
                        self.events.pop_front();
                    }
                    self.events.push_back(l);
                }
            }
            LineKind::Summary | LineKind::Other => self.notes.extend(lines),
        }
        self.last_draw
            .is_none_or(|at| now.duration_since(at) >= EVENT_REDRAW)
    }

    /// Notes that a frame was drawn at `now`.
    pub fn drawn(&mut self, now: Instant) {
        self.last_draw = Some(now);
    }

    /// The screen's lines for a terminal of `width` x `height` at `now`: the title, the last round of
    /// dumps (cut with a `... N more lines` mark when it does not fit), and the last events.
    pub fn frame(&self, width: u16, height: u16, now: Instant) -> Vec<String> {
        let width = usize::from(width.max(20));
        let height = usize::from(height.max(4));
        let secs = now.saturating_duration_since(self.started).as_secs();
        let mut out = vec![
            format!(
                "{} | {:02}:{:02}:{:02} | {} events | maps every {} s, {} refreshes | Ctrl-C stops",
                self.title,
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                self.event_count,
                self.every_secs,
                self.rounds
            ),
            String::new(),
        ];
        let body = height - out.len();
        // Events take a third of the body when there are any; the maps get the rest.
        let event_rows = if self.events.is_empty() {
            0
        } else {
            (body / 3).max(2).min(self.events.len() + 1)
        };
        let map_rows = body - event_rows;
        let maps: Vec<String> = if self.rounds == 0 {
            vec![format!(
                "(the first map dump comes after {} s)",
                self.every_secs
            )]
        } else if self.snapshot.is_empty() {
            vec!["(the maps are empty)".to_string()]
        } else {
            self.snapshot.clone()
        };
        if maps.len() <= map_rows {
            let pad = map_rows - maps.len();
            out.extend(maps);
            out.extend(std::iter::repeat_n(String::new(), pad));
        } else if map_rows > 0 {
            out.extend(maps[..map_rows - 1].iter().cloned());
            out.push(format!("... {} more lines", maps.len() - (map_rows - 1)));
        }
        if event_rows > 0 {
            out.push(format!("-- last events ({} in all) --", self.event_count));
            let shown = event_rows - 1;
            let skip = self.events.len().saturating_sub(shown);
            out.extend(self.events.iter().skip(skip).cloned());
        }
        out.truncate(height);
        out.into_iter().map(|l| clip(&l, width)).collect()
    }

    /// What stays on the terminal after the view: the last complete round (the exit dump), then the
    /// summaries.
    pub fn final_lines(&self) -> Vec<String> {
        let mut out = if self.pending.is_empty() {
            self.snapshot.clone()
        } else {
            // A round cut short (the loader was killed): what arrived of it.
            self.pending.clone()
        };
        out.extend(self.notes.iter().cloned());
        out
    }
}

/// The terminal's size; a terminal that reports none (a fresh pty) is taken as `$COLUMNS` x `$LINES`,
/// else 80 x 24.
fn terminal_size() -> (u16, u16) {
    let env = |name: &str, default: u16| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    match terminal::size() {
        Ok((w, h)) if w > 0 && h > 0 => (w, h),
        _ => (env("COLUMNS", 80), env("LINES", 24)),
    }
}

/// `line` cut to `width` characters.
fn clip(line: &str, width: usize) -> String {
    line.chars().take(width).collect()
}

/// The terminal while a live view is on it: the alternate screen, cursor hidden; left on drop.
pub struct Screen {
    out: std::io::Stdout,
}

impl Screen {
    /// Switches stdout (a terminal) to the alternate screen.
    pub fn enter() -> std::io::Result<Screen> {
        let mut out = std::io::stdout();
        queue!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
        out.flush()?;
        Ok(Screen { out })
    }

    /// Draws `view` as it is now, fitted to the terminal's current size.
    pub fn draw(&mut self, view: &mut LiveView) -> std::io::Result<()> {
        let now = Instant::now();
        let (w, h) = terminal_size();
        let lines = view.frame(w, h, now);
        queue!(self.out, cursor::MoveTo(0, 0))?;
        for (i, l) in lines.iter().enumerate() {
            queue!(
                self.out,
                style::Print(l),
                terminal::Clear(terminal::ClearType::UntilNewLine)
            )?;
            if i + 1 < lines.len() {
                queue!(self.out, cursor::MoveToNextLine(1))?;
            }
        }
        queue!(
            self.out,
            terminal::Clear(terminal::ClearType::FromCursorDown)
        )?;
        self.out.flush()?;
        view.drawn(now);
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = queue!(self.out, cursor::Show, terminal::LeaveAlternateScreen);
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Renderer;

    /// Feeds JSON lines through a renderer into a view, as `run` does.
    fn feed(view: &mut LiveView, renderer: &mut Renderer, lines: &[&str], at: Instant) {
        for l in lines {
            let text = renderer.line(l);
            view.take(renderer.last_kind(), text, at);
        }
    }

    #[test]
    fn a_round_replaces_the_snapshot_and_events_scroll_below() {
        let start = Instant::now();
        let mut view = LiveView::new("syscount on ssh root@bb", 2, start);
        let mut r = Renderer::for_arch(crate::arch::Arch::Arm64);
        assert_eq!(
            view.frame(60, 6, start)[2],
            "(the first map dump comes after 2 s)"
        );
        feed(
            &mut view,
            &mut r,
            &[
                r#"{"probe":"syscount","map":"counts","key":56,"value":10}"#,
                r#"{"probe":"syscount","map":"counts","key":63,"value":4}"#,
                r#"{"dump":"interval"}"#,
                r#"{"probe":"opensnoop","map":"events","pid":7,"comm":"cat","ret":3,"path":"/etc/hosts"}"#,
                r#"{"probe":"syscount","map":"counts","key":56,"value":12}"#,
            ],
            start,
        );
        let at = start + Duration::from_secs(3725);
        insta::assert_snapshot!(view.frame(70, 12, at).join("\n"));
        // The second round replaces the first as a whole.
        feed(&mut view, &mut r, &[r#"{"dump":"interval"}"#], at);
        let frame = view.frame(70, 12, at);
        assert!(frame.iter().any(|l| l.contains("12")), "{frame:#?}");
        assert!(!frame.iter().any(|l| l.contains("read")), "{frame:#?}");
        assert_eq!(view.final_lines(), view.snapshot);
    }

    #[test]
    fn a_round_too_long_for_the_terminal_is_cut_with_a_count() {
        let start = Instant::now();
        let mut view = LiveView::new("t", 1, start);
        let mut r = Renderer::new();
        let lines: Vec<String> = (0..30)
            .map(|i| format!(r#"{{"probe":"p","map":"m","key":{i},"value":{}}}"#, 100 - i))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        feed(&mut view, &mut r, &refs, start);
        feed(&mut view, &mut r, &[r#"{"dump":"interval"}"#], start);
        let frame = view.frame(40, 10, start);
        assert_eq!(frame.len(), 10);
        // Title, blank, 7 map lines, the cut mark.
        assert_eq!(frame[9], "... 25 more lines", "{frame:#?}");
        assert!(frame.iter().all(|l| l.chars().count() <= 40));
    }

    #[test]
    fn events_redraw_at_most_every_quarter_second() {
        let start = Instant::now();
        let mut view = LiveView::new("t", 1, start);
        let ev = |v: &mut LiveView, at| v.take(LineKind::Event, vec!["e".into()], at);
        assert!(ev(&mut view, start));
        view.drawn(start);
        assert!(!ev(&mut view, start + Duration::from_millis(100)));
        assert!(ev(&mut view, start + Duration::from_millis(300)));
        assert!(view.take(LineKind::RoundEnd, Vec::new(), start));
    }
}
