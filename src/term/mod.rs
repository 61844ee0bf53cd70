//! The terminal pieces the dashboard and the demo share: the guard that owns the terminal (raw
//! mode, alternate screen, mouse, bracketed paste; restored on drop and on panic), [`key`]
//! names, the generic [`keymap`], the [`theme`], the log file and ring ([`logbuf`]) and the centred [`popup`] box.

pub mod key;
pub mod keymap;
pub mod logbuf;
pub mod theme;

pub use key::Key;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use ratatui::DefaultTerminal;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Clear};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the panic hook: a panic on any thread restores the terminal, so the loop must stop.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Whether a thread panicked while a [`TerminalGuard`] was installed (event loops stop then).
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// Owns the terminal: raw mode, alternate screen and mouse capture on creation, all undone on
/// drop and by the panic hook (SIGTERM and Ctrl-C end the loop, which drops the guard).
pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    pub fn enter() -> std::io::Result<TerminalGuard> {
        // try_init installs a hook that restores the terminal before the panic is printed.
        let terminal = ratatui::try_init()?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            let _ = crossterm::execute!(
                std::io::stdout(),
                DisableMouseCapture,
                DisableBracketedPaste
            );
            previous(info);
        }));
        // Bracketed paste: pasted text arrives as one event for the focused text field.
        if let Err(e) =
            crossterm::execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste)
        {
            let _ = ratatui::try_restore();
            return Err(e);
        }
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = crossterm::execute!(
            std::io::stdout(),
            DisableMouseCapture,
            DisableBracketedPaste
        );
        let _ = self.terminal.show_cursor();
        let _ = ratatui::try_restore();
    }
}

/// A bordered box of at most `w`×`h` in the middle of `area`, cleared (the dashboard's and the
/// demo's overlays).
pub fn popup(frame: &mut Frame, area: Rect, w: u16, h: u16, title: &str) -> Rect {
    let r = area.centered(
        Constraint::Length(w.min(area.width)),
        Constraint::Length(h.min(area.height)),
    );
    frame.render_widget(Clear, r);
    let b = Block::bordered()
        .border_style(theme::border(true))
        .title(Span::styled(format!(" {title} "), theme::title(true)));
    let inner = b.inner(r);
    frame.render_widget(b, r);
    inner
}
