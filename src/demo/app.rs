//! The demo dashboard's state and its reactions to keys, with no I/O: the event loop feeds it
//! node statuses, tree data and scenario progress, and carries out the [`DemoCommand`]s it
//! returns. A key that cannot apply (a stopped node, a node that does not exist, a bad amount)
//! leaves a message and changes nothing.

use super::controller::{NodeStatus, Topology};
use super::keys::{DemoAction, DemoKeymap};
use super::scenario::{Pace, SPEEDS, StepReport};
use super::tree::TreeInput;
use crate::core::amount::Amount;
use crate::core::params::Network;
use crate::term::Key;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the event loop must do for the app. Node numbers are 0-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemoCommand {
    Quit,
    SetMining(usize, bool),
    SetPower(usize, u32),
    Send {
        from: usize,
        to: usize,
        amount: Amount,
    },
    Partition(usize),
    /// Heal these nodes (all partitions when empty).
    Heal(Vec<usize>),
    Stop(usize),
    Restart(usize),
    /// Play the scenario at this pace (paused, step by step, faster or slower).
    Pace(Pace),
}

/// What setting node `sel`'s power to `power` means, in words: its share of the mining power
/// of the nodes that mine.
pub fn power_text(nodes: &[NodeStatus], sel: usize, power: u32) -> String {
    let others: u64 = nodes
        .iter()
        .filter(|s| s.index != sel && s.running && s.mining)
        .map(|s| u64::from(s.power))
        .sum();
    let name = format!("node {}", sel + 1);
    let mining = nodes.get(sel).is_some_and(|s| s.running && s.mining);
    let total = others + u64::from(power);
    match (u64::from(power) * 100 + total / 2).checked_div(total) {
        _ if !mining => format!("{name}: power {power} (it is not mining: m starts it)"),
        None => format!("{name}: power 0 (no node finds blocks)"),
        Some(pct) => format!("{name}: power {power}, {pct}% of the mining power"),
    }
}

/// The send form: recipient node (1-based, as typed) and amount in coins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendForm {
    pub to: String,
    pub amount: String,
    /// 0: recipient, 1: amount.
    pub field: usize,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Send(SendForm),
}

/// A scenario playing in the dashboard.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScenarioView {
    pub name: String,
    pub description: String,
    pub steps: usize,
    /// The step running now (1-based) and its text.
    pub current: Option<(usize, String)>,
    /// The caption of the step running or last run.
    pub say: Option<String>,
    /// The last step that started (1-based; 0: none yet).
    pub started: usize,
    pub done: Vec<StepReport>,
    pub pace: Pace,
    /// Passed or not, once finished.
    pub finished: Option<bool>,
}

/// The dashboard's pace for a scenario: as written, with two seconds between steps to read
/// what the last one did.
pub fn dashboard_pace() -> Pace {
    Pace {
        beat: std::time::Duration::from_secs(2),
        ..Pace::default()
    }
}

/// What a restart of node `i` came to, from the nodes' statuses just after it: its height, and
/// whether it has anything to catch up and anyone to catch up from.
pub fn after_restart(nodes: &[NodeStatus], i: usize) -> String {
    let Some(me) = nodes.get(i) else {
        return format!("node {} restarted", i + 1);
    };
    let name = format!("node {} restarted at height {}", i + 1, me.height);
    let best = nodes
        .iter()
        .filter(|s| s.index != i && s.running)
        .max_by_key(|s| (s.work, s.height));
    match best {
        _ if me.partitioned => {
            format!("{name}; it is cut off, so it cannot catch up until h heals it")
        }
        None => format!("{name}; no other node runs, so there is nothing to catch up from"),
        Some(b) if b.work > me.work => format!(
            "{name}, {} behind node {} ({}): catching up from its peers",
            match b.height.saturating_sub(me.height) {
                1 => "1 block".to_string(),
                d => format!("{d} blocks"),
            },
            b.index + 1,
            b.height
        ),
        Some(_) => format!("{name}, level with the others"),
    }
}

/// How long a message stays beside the key hints.
pub const MESSAGE_FOR: std::time::Duration = std::time::Duration::from_secs(6);

/// A message beside the key hints: what a key did, or why it did nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMessage {
    pub text: String,
    pub error: bool,
    pub since: std::time::Instant,
}

/// The whole demo dashboard.
#[derive(Clone, Debug)]
pub struct DemoApp {
    pub network: Network,
    pub topology: Topology,
    pub keymap: DemoKeymap,
    pub nodes: Vec<NodeStatus>,
    pub tree: TreeInput,
    pub selected: usize,
    pub overlay: Option<Overlay>,
    pub scenario: Option<ScenarioView>,
    /// A message beside the key hints, until it expires ([`MESSAGE_FOR`]).
    pub message: Option<StatusMessage>,
    /// Commands in flight per node (a stop or restart takes a moment).
    pub busy: Vec<bool>,
}

impl DemoApp {
    pub fn new(network: Network, topology: Topology, nodes: usize) -> DemoApp {
        DemoApp {
            network,
            topology,
            keymap: DemoKeymap::default(),
            nodes: (0..nodes)
                .map(|index| NodeStatus {
                    index,
                    ..NodeStatus::default()
                })
                .collect(),
            tree: TreeInput::default(),
            selected: 0,
            overlay: None,
            scenario: None,
            message: None,
            busy: vec![false; nodes],
        }
    }

    pub fn info(&mut self, s: impl Into<String>) {
        self.say(s.into(), false);
    }
    pub fn error(&mut self, s: impl Into<String>) {
        self.say(s.into(), true);
    }
    fn say(&mut self, text: String, error: bool) {
        self.message = Some(StatusMessage {
            text,
            error,
            since: std::time::Instant::now(),
        });
    }

    /// Drop the message once it is [`MESSAGE_FOR`] old at `now`; whether it went.
    pub fn expire_message(&mut self, now: std::time::Instant) -> bool {
        let old = self
            .message
            .as_ref()
            .is_some_and(|m| now.duration_since(m.since) >= MESSAGE_FOR);
        if old {
            self.message = None;
        }
        old
    }

    fn selected_node(&self) -> Option<&NodeStatus> {
        self.nodes.get(self.selected)
    }

    /// A key; returns what to do, if anything.
    pub fn on_key(&mut self, k: KeyEvent) -> Option<DemoCommand> {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            return Some(DemoCommand::Quit);
        }
        if let Some(Overlay::Send(_)) = self.overlay {
            return self.send_form_key(k);
        }
        let action = self.keymap.action(Key::from(k));
        if matches!(self.overlay, Some(Overlay::Help)) {
            match action {
                Some(DemoAction::Quit) => return Some(DemoCommand::Quit),
                _ => {
                    self.overlay = None;
                    return None;
                }
            }
        }
        let Some(action) = action else {
            self.error(format!("{} does nothing here (? for help)", Key::from(k)));
            return None;
        };
        self.on_action(action)
    }

    pub fn on_action(&mut self, action: DemoAction) -> Option<DemoCommand> {
        let n = self.nodes.len();
        let sel = self.selected;
        let name = format!("node {}", sel + 1);
        let running = self.selected_node().is_some_and(|s| s.running);
        let busy = self.busy.get(sel).copied().unwrap_or(false);
        match action {
            DemoAction::Select(i) => {
                if i < n {
                    self.selected = i;
                    self.message = None;
                } else {
                    self.error(format!("there is no node {} ({n} nodes)", i + 1));
                }
                None
            }
            DemoAction::SelectPrev => {
                self.selected = (sel + n.max(1) - 1) % n.max(1);
                None
            }
            DemoAction::SelectNext => {
                self.selected = (sel + 1) % n.max(1);
                None
            }
            DemoAction::ToggleMining => {
                let mining = self.selected_node().is_some_and(|s| s.mining);
                if !running && !mining {
                    self.error(format!("{name} is stopped: r restarts it"));
                    return None;
                }
                self.info(format!(
                    "{name}: mining {}",
                    if mining { "off" } else { "on" }
                ));
                Some(DemoCommand::SetMining(sel, !mining))
            }
            DemoAction::PowerUp | DemoAction::PowerDown => {
                let now = self.selected_node().map_or(1, |s| s.power);
                let power = if action == DemoAction::PowerUp {
                    (now + 1).min(super::controller::MAX_POWER)
                } else {
                    now.saturating_sub(1)
                };
                if power == now {
                    self.error(format!(
                        "{name}'s power is already {now} (0 to {})",
                        super::controller::MAX_POWER
                    ));
                    return None;
                }
                self.info(power_text(&self.nodes, sel, power));
                Some(DemoCommand::SetPower(sel, power))
            }
            DemoAction::Send => {
                if !running {
                    self.error(format!("{name} is stopped: r restarts it"));
                } else if n < 2 {
                    self.error("sending needs a second node");
                } else {
                    self.overlay = Some(Overlay::Send(SendForm {
                        to: ((sel + 1) % n + 1).to_string(),
                        ..SendForm::default()
                    }));
                }
                None
            }
            DemoAction::Partition => {
                if self.selected_node().is_some_and(|s| s.partitioned) {
                    self.error(format!("{name} is already partitioned: h heals it"));
                    return None;
                }
                if running {
                    self.info(format!("{name}: links cut"));
                } else {
                    self.info(format!(
                        "{name} is stopped: its links stay cut when r restarts it (h heals)"
                    ));
                }
                Some(DemoCommand::Partition(sel))
            }
            DemoAction::Heal => {
                if self.selected_node().is_some_and(|s| s.partitioned) {
                    self.info(format!("{name}: links restored"));
                    Some(DemoCommand::Heal(vec![sel]))
                } else if self.nodes.iter().any(|s| s.partitioned) {
                    self.info("every partition healed");
                    Some(DemoCommand::Heal(Vec::new()))
                } else {
                    self.error("nothing is partitioned");
                    None
                }
            }
            DemoAction::Stop => {
                if busy {
                    self.error(format!("{name} is busy starting or stopping"));
                    None
                } else if !running {
                    self.error(format!("{name} is already stopped"));
                    None
                } else {
                    self.busy[sel] = true;
                    self.info(format!("stopping {name}…"));
                    Some(DemoCommand::Stop(sel))
                }
            }
            DemoAction::Restart => {
                if busy {
                    self.error(format!("{name} is busy starting or stopping"));
                    None
                } else if running {
                    self.error(format!("{name} is running (x stops it)"));
                    None
                } else {
                    self.busy[sel] = true;
                    self.info(format!("restarting {name}…"));
                    Some(DemoCommand::Restart(sel))
                }
            }
            DemoAction::Pause | DemoAction::NextStep | DemoAction::Faster | DemoAction::Slower => {
                self.pace_key(action)
            }
            DemoAction::Help => {
                self.overlay = Some(Overlay::Help);
                None
            }
            DemoAction::Back => {
                self.overlay = None;
                None
            }
            DemoAction::Quit => Some(DemoCommand::Quit),
        }
    }

    /// Space, `n`, `+` and `-`: the scenario's pace.
    fn pace_key(&mut self, action: DemoAction) -> Option<DemoCommand> {
        let s = match &mut self.scenario {
            None => {
                self.error("no scenario is playing (--scenario FILE)");
                return None;
            }
            Some(s) if s.finished.is_some() => {
                self.error("the scenario has finished");
                return None;
            }
            Some(s) => s,
        };
        let p = &mut s.pace;
        let said = match action {
            // Space: pause, or go on (leaving step mode).
            DemoAction::Pause if p.stepping => {
                p.stepping = false;
                p.paused = false;
                "step mode off: the scenario plays on".to_string()
            }
            DemoAction::Pause => {
                p.paused = !p.paused;
                if p.paused {
                    "scenario paused (Space resumes, n runs one step)"
                } else {
                    "scenario resumed"
                }
                .to_string()
            }
            // n: step mode, and the next step.
            DemoAction::NextStep => {
                if s.current.is_some() {
                    let i = s.started;
                    p.stepping = true;
                    p.granted = p.granted.max(i);
                    format!("step mode: step {i} is still running; n runs the next when it ends")
                } else if s.started >= s.steps {
                    return None;
                } else {
                    p.stepping = true;
                    p.paused = false;
                    p.granted = s.started + 1;
                    format!(
                        "step mode: running step {} of {} (n: the next, Space: play on)",
                        s.started + 1,
                        s.steps
                    )
                }
            }
            DemoAction::Faster | DemoAction::Slower => {
                let at = SPEEDS.iter().position(|v| *v >= p.speed_pct).unwrap_or(2);
                let to = if action == DemoAction::Faster {
                    (at + 1).min(SPEEDS.len() - 1)
                } else {
                    at.saturating_sub(1)
                };
                p.speed_pct = SPEEDS[to];
                format!("scenario speed {}", speed_text(p.speed_pct))
            }
            _ => return None,
        };
        let pace = *p;
        self.info(said);
        Some(DemoCommand::Pace(pace))
    }

    /// Check the send form: recipient node and amount.
    pub fn check_send(&self, f: &SendForm) -> Result<(usize, Amount), String> {
        let n = self.nodes.len();
        let to = match f.to.trim().parse::<usize>() {
            Ok(t) if (1..=n).contains(&t) => t - 1,
            _ => return Err(format!("recipient: a node number from 1 to {n}")),
        };
        if to == self.selected {
            return Err("recipient: pick another node than the sender".into());
        }
        let amount = Amount::parse_coins(f.amount.trim()).map_err(|e| format!("amount: {e}"))?;
        if amount == Amount::ZERO {
            return Err("amount: must be above zero".into());
        }
        if let Some(b) = self.selected_node().and_then(|s| s.balance)
            && amount > b.confirmed
        {
            return Err(format!(
                "amount: above the spendable balance of {}",
                b.confirmed
            ));
        }
        Ok((to, amount))
    }

    fn send_form_key(&mut self, k: KeyEvent) -> Option<DemoCommand> {
        let Some(Overlay::Send(mut f)) = self.overlay.take() else {
            return None;
        };
        match k.code {
            KeyCode::Esc => return None,
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => f.field ^= 1,
            KeyCode::Backspace => {
                if f.field == 0 {
                    f.to.pop();
                } else {
                    f.amount.pop();
                }
            }
            KeyCode::Enter => match self.check_send(&f) {
                Ok((to, amount)) => {
                    self.info(format!(
                        "sending {amount} from node {} to node {}…",
                        self.selected + 1,
                        to + 1
                    ));
                    return Some(DemoCommand::Send {
                        from: self.selected,
                        to,
                        amount,
                    });
                }
                Err(e) => f.error = Some(e),
            },
            KeyCode::Char(c) if !c.is_control() => {
                let field = if f.field == 0 {
                    &mut f.to
                } else {
                    &mut f.amount
                };
                if field.chars().count() < 24 {
                    field.push(c);
                }
                f.error = None;
            }
            _ => {}
        }
        self.overlay = Some(Overlay::Send(f));
        None
    }
}

/// A speed in percent as people say it: ×2, ×1/4.
pub fn speed_text(pct: u32) -> String {
    if pct >= 100 {
        format!("×{}", pct / 100)
    } else {
        format!("×1/{}", 100 / pct.max(1))
    }
}
