//! Colours and styles in one place.

use ratatui::style::{Color, Modifier, Style};

pub fn border(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    }
}

pub fn title(focused: bool) -> Style {
    let s = Style::new().add_modifier(Modifier::BOLD);
    if focused { s.fg(Color::Cyan) } else { s }
}

pub fn label() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn value() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn hash() -> Style {
    Style::new().fg(Color::Yellow)
}

pub fn good() -> Style {
    Style::new().fg(Color::Green)
}

pub fn bad() -> Style {
    Style::new().fg(Color::Red)
}

pub fn warn() -> Style {
    Style::new().fg(Color::Magenta)
}

pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn key() -> Style {
    Style::new().fg(Color::Black).bg(Color::Cyan)
}

pub fn status_bar() -> Style {
    Style::new().bg(Color::Black).fg(Color::Gray)
}

pub fn sparkline() -> Style {
    Style::new().fg(Color::Green)
}
