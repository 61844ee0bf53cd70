//! Scenarios: TOML files of timed steps (mine, send, partition, heal, stop, restart, mining
//! on/off, sleep, wait until a condition) and expectations (all nodes on one tip within t
//! seconds, a balance, a height, a reorganisation of some depth, exactly one of two
//! conflicting payments confirmed). [`Scenario::parse`] checks a whole file before anything
//! runs and says exactly what is wrong; [`run`] plays it against a [`Demo`] and reports each
//! step as it ends.
//!
//! ```toml
//! name = "fork-and-reorg"
//! nodes = 3              # at least this many nodes; the default for --nodes
//! topology = "line"      # the default for --topology
//! network = "regtest"    # refuse to run on another network
//! power = [1, 1, 3]      # each node's mining power (the default for --power; missing: 1)
//! block_interval = 0.5   # mean seconds between paced blocks at power 1 (--block-interval)
//!
//! [[step]]
//! do = "mine"            # mine | send | partition | heal | stop | restart | mining | power
//!                        # | sleep | wait | expect
//! node = 1
//! blocks = 12
//! after = 0.5            # optional: seconds to wait before the step
//! say = "node 1 mines"   # optional: a caption shown while the step runs
//!
//! [[step]]
//! do = "expect"          # or "wait": the same conditions, but a failed wait stops the run
//! that = "converged"     # converged | height | balance | reorg | one_spend | seen
//! within = 10            # seconds (default 10)
//! ```

use super::controller::Demo;
use crate::core::amount::Amount;
use crate::core::hash::Txid;
use crate::core::params::Network;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::watch;

use super::controller::Topology;

/// A condition on the demo network.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// Every running node on the same tip.
    Converged,
    /// Node's height at least this.
    Height { node: usize, at_least: u64 },
    /// Node's confirmed (spendable) wallet balance.
    Balance {
        node: usize,
        equals: Option<Amount>,
        at_least: Option<Amount>,
    },
    /// A reorganisation of at least `depth` blocks seen on `node` (any node when None).
    Reorg { node: Option<usize>, depth: usize },
    /// Of the payments with these labels, exactly one is confirmed on every running node and
    /// the others are nowhere (not confirmed, not in any mempool).
    OneSpend { labels: Vec<String> },
    /// The payment with this label has reached `node` (its mempool or its chain).
    Seen { node: usize, label: String },
    /// Every other running node holds a ban on `node`.
    Banned { node: usize },
    /// The payment with this label is gone from `node`'s chain and mempool, and another
    /// transaction on its chain spends the same coin.
    Reversed { node: usize, label: String },
    /// The last selfish mining run on `node` earned it a larger share of the best chain than
    /// of the blocks found.
    SelfishGain { node: usize },
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Mine {
        node: usize,
        blocks: u64,
    },
    Send {
        from: usize,
        to: usize,
        amount: Amount,
        via: Option<usize>,
        label: Option<String>,
    },
    Partition {
        nodes: Vec<usize>,
    },
    Heal {
        nodes: Vec<usize>,
    },
    Stop {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Mining {
        node: usize,
        on: bool,
    },
    Power {
        node: usize,
        power: u32,
    },
    /// Node `node` relays a block with an overpaid coinbase to every other node.
    InvalidBlock {
        node: usize,
        within: f64,
    },
    /// Node `attacker` reverses a payment to `victim` with a private branch (see
    /// [`super::controller::MajorityAttack`]).
    MajorityAttack {
        attacker: usize,
        victim: usize,
        amount: Amount,
        confirmations: u64,
        label: Option<String>,
        within: f64,
    },
    /// Node `node` mines selfishly (see [`super::controller::SelfishMining`]).
    Selfish {
        node: usize,
        reach: Vec<usize>,
        blocks: u64,
        within: f64,
    },
    Sleep {
        seconds: f64,
    },
    Wait {
        until: Condition,
        within: f64,
    },
    Expect {
        that: Condition,
        within: f64,
    },
}

/// One step: an optional delay, then the action, with an optional caption. Node numbers are
/// 0-based here.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub after: f64,
    pub action: Action,
    /// What the step means, in words, shown while it runs.
    pub say: Option<String>,
}

/// Longest caption a step may have, in characters.
pub const MAX_SAY: usize = 300;

/// How a scenario is played, changed while it plays (the dashboard's keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub paused: bool,
    /// Step mode: step k (from 1) starts only once `granted` is at least k.
    pub stepping: bool,
    pub granted: usize,
    /// Delays and sleeps as written are divided by this share (percent; 100: as written).
    /// Waits and expectations are not: the network takes the time it takes.
    pub speed_pct: u32,
    /// A pause before each step after the first, at speed 100: time to read what happened.
    pub beat: Duration,
}

impl Default for Pace {
    /// As written, with no beat: the headless pace.
    fn default() -> Pace {
        Pace {
            paused: false,
            stepping: false,
            granted: 0,
            speed_pct: 100,
            beat: Duration::ZERO,
        }
    }
}

/// Speeds the dashboard steps through, in percent.
pub const SPEEDS: [u32; 7] = [25, 50, 100, 200, 400, 800, 1600];

/// A parsed scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub nodes: usize,
    pub topology: Option<Topology>,
    pub network: Option<Network>,
    /// Each node's mining power (the default for `--power`; missing entries are 1).
    pub power: Option<Vec<u32>>,
    /// Mean seconds between two paced blocks at power 1 (the default for `--block-interval`).
    pub block_interval: Option<f64>,
    pub steps: Vec<Step>,
}

/// Longest wait, sleep or delay a step may ask for.
const MAX_SECONDS: f64 = 3600.0;
/// Most blocks one step may mine.
const MAX_BLOCKS: u64 = 100_000;

/// The file as written: serde types that refuse unknown keys. Values are checked as they are
/// read (a node number, seconds, coins); what needs more than one field is checked after.
mod file {
    use super::{MAX_BLOCKS, MAX_SECONDS};
    use crate::core::amount::Amount;
    use crate::core::params::Network;
    use crate::demo::controller::MAX_POWER;
    use crate::demo::controller::Topology;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Doc {
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub description: String,
        #[serde(default)]
        pub nodes: Option<NodeCount>,
        #[serde(default)]
        pub topology: Option<Topology>,
        #[serde(default)]
        pub network: Option<Network>,
        #[serde(default)]
        pub power: Option<Vec<Power>>,
        #[serde(default)]
        pub block_interval: Option<Seconds>,
        #[serde(default)]
        pub step: Vec<toml::Spanned<toml::Table>>,
    }

    /// One `[[step]]`, by its `do`.
    #[derive(Deserialize)]
    #[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
    pub(super) enum Step {
        Mine {
            #[serde(default)]
            after: Seconds,
            node: Node,
            blocks: Blocks,
        },
        Send {
            #[serde(default)]
            after: Seconds,
            from: Node,
            to: Node,
            amount: Coins,
            via: Option<Node>,
            label: Option<String>,
        },
        Partition {
            #[serde(default)]
            after: Seconds,
            nodes: Nodes,
        },
        Heal {
            #[serde(default)]
            after: Seconds,
            #[serde(default)]
            nodes: Nodes,
        },
        Stop {
            #[serde(default)]
            after: Seconds,
            node: Node,
        },
        Restart {
            #[serde(default)]
            after: Seconds,
            node: Node,
        },
        Mining {
            #[serde(default)]
            after: Seconds,
            node: Node,
            on: bool,
        },
        Power {
            #[serde(default)]
            after: Seconds,
            node: Node,
            power: Power,
        },
        Attack {
            #[serde(default)]
            after: Seconds,
            kind: AttackKind,
            node: Node,
            within: Option<Seconds>,
            victim: Option<Node>,
            amount: Option<Coins>,
            confirmations: Option<u64>,
            label: Option<String>,
            reach: Option<Nodes>,
            blocks: Option<Blocks>,
        },
        Sleep {
            #[serde(default)]
            after: Seconds,
            seconds: Seconds,
        },
        Wait(Check),
        Expect(Check),
    }

    /// A `wait` (its condition under `until`) or an `expect` (under `that`).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Check {
        #[serde(default)]
        pub after: Seconds,
        pub until: Option<ConditionKind>,
        pub that: Option<ConditionKind>,
        pub within: Option<Seconds>,
        pub node: Option<Node>,
        pub at_least: Option<toml::Value>,
        pub equals: Option<Coins>,
        pub depth: Option<u64>,
        pub labels: Option<Vec<String>>,
        pub label: Option<String>,
    }

    impl Check {
        /// The names of the condition fields given.
        pub fn given(&self) -> Vec<&'static str> {
            let mut v = Vec::new();
            let mut see = |set: bool, name| {
                if set {
                    v.push(name);
                }
            };
            see(self.node.is_some(), "node");
            see(self.at_least.is_some(), "at_least");
            see(self.equals.is_some(), "equals");
            see(self.depth.is_some(), "depth");
            see(self.labels.is_some(), "labels");
            see(self.label.is_some(), "label");
            v
        }
    }

    /// A value of a scenario file, checked as serde reads it: `$name($inner)` is read from a
    /// TOML value `$v` by `$read`, a `Result<$inner, String>` whose error says what was wanted.
    macro_rules! checked {
        ($(#[$doc:meta])* $name:ident($inner:ty) $(, $derive:ident)*; |$v:ident| $read:expr) => {
            $(#[$doc])*
            #[derive(Deserialize, Clone $(, $derive)*)]
            #[serde(try_from = "toml::Value")]
            pub(super) struct $name(pub $inner);
            impl TryFrom<toml::Value> for $name {
                type Error = String;
                fn try_from($v: toml::Value) -> Result<$name, String> {
                    $read.map($name)
                }
            }
        };
    }

    /// The whole number `v`, if it is one from `lo` to `hi`.
    fn whole(v: &toml::Value, lo: i64, hi: i64) -> Option<i64> {
        match v {
            toml::Value::Integer(i) if (lo..=hi).contains(i) => Some(*i),
            _ => None,
        }
    }

    checked! {
        /// `nodes`: 1 to 64.
        NodeCount(usize), Copy;
        |v| whole(&v, 1, 64)
            .map(|n| n as usize)
            .ok_or_else(|| format!("`nodes` must be 1 to 64, not {v}"))
    }

    checked! {
        /// A node number as written (from 1), kept 0-based.
        Node(usize), Copy;
        |v| whole(&v, 1, 64)
            .map(|n| n as usize - 1)
            .ok_or_else(|| format!("a node number from 1 to 64, not {v}"))
    }

    checked! {
        /// One node number or a list of them.
        Nodes(Vec<usize>), Default;
        |v| match v {
            toml::Value::Array(a) => a
                .into_iter()
                .map(|v| Node::try_from(v).map(|n| n.0))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("a list of node numbers: {e}")),
            v => Node::try_from(v)
                .map(|n| vec![n.0])
                .map_err(|e| format!("{e} (or a list of them)")),
        }
    }

    checked! {
        /// A node's mining power: 0 to [`MAX_POWER`].
        Power(u32), Copy;
        |v| whole(&v, 0, i64::from(MAX_POWER))
            .map(|n| n as u32)
            .ok_or_else(|| format!("mining power must be 0 to {MAX_POWER}, not {v}"))
    }

    checked! {
        /// Blocks one step mines: 1 to [`MAX_BLOCKS`].
        Blocks(u64), Copy;
        |v| whole(&v, 1, MAX_BLOCKS as i64)
            .map(|n| n as u64)
            .ok_or_else(|| format!("`blocks` must be 1 to {MAX_BLOCKS}, not {v}"))
    }

    checked! {
        /// Seconds: 0 to [`MAX_SECONDS`], whole or not.
        Seconds(f64), Copy, Default;
        |v| match v {
            toml::Value::Integer(i) => Ok(i as f64),
            toml::Value::Float(f) => Ok(f),
            v => Err(format!("a number of seconds, not {v}")),
        }
        .and_then(|s| {
            if (0.0..=MAX_SECONDS).contains(&s) {
                Ok(s)
            } else {
                Err(format!("seconds must be 0 to {MAX_SECONDS}, not {s}"))
            }
        })
    }

    checked! {
        /// Coins: an exact decimal as a string ("2.5"), or a whole number.
        Coins(Amount), Copy;
        |v| coins(&v)
    }

    pub(super) fn coins(v: &toml::Value) -> Result<Amount, String> {
        match v {
            toml::Value::String(s) => Amount::parse_coins(s).map_err(|e| e.to_string()),
            toml::Value::Integer(i) if *i >= 0 => {
                Amount::parse_coins(&i.to_string()).map_err(|e| e.to_string())
            }
            v => Err(format!("an amount in coins as a string (\"2.5\"), not {v}")),
        }
    }

    /// An adversary an `attack` step stages.
    #[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
    #[serde(rename_all = "snake_case")]
    pub(super) enum AttackKind {
        InvalidBlock,
        Majority,
        Selfish,
    }

    /// What a `wait` or `expect` checks.
    #[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
    #[serde(try_from = "String")]
    pub(super) enum ConditionKind {
        Converged,
        Height,
        Balance,
        Reorg,
        OneSpend,
        Seen,
        Banned,
        Reversed,
        SelfishGain,
    }
    impl TryFrom<String> for ConditionKind {
        type Error = String;
        fn try_from(s: String) -> Result<ConditionKind, String> {
            Ok(match s.as_str() {
                "converged" => ConditionKind::Converged,
                "height" => ConditionKind::Height,
                "balance" => ConditionKind::Balance,
                "reorg" => ConditionKind::Reorg,
                "one_spend" => ConditionKind::OneSpend,
                "seen" => ConditionKind::Seen,
                "banned" => ConditionKind::Banned,
                "reversed" => ConditionKind::Reversed,
                "selfish_gain" => ConditionKind::SelfishGain,
                other => {
                    return Err(format!(
                        "unknown condition {other:?} (known: converged, height, balance, reorg, \
                         one_spend, seen, banned, reversed, selfish_gain)"
                    ));
                }
            })
        }
    }
    impl ConditionKind {
        pub fn name(self) -> &'static str {
            match self {
                ConditionKind::Converged => "converged",
                ConditionKind::Height => "height",
                ConditionKind::Balance => "balance",
                ConditionKind::Reorg => "reorg",
                ConditionKind::OneSpend => "one_spend",
                ConditionKind::Seen => "seen",
                ConditionKind::Banned => "banned",
                ConditionKind::Reversed => "reversed",
                ConditionKind::SelfishGain => "selfish_gain",
            }
        }
        /// The condition fields it takes.
        pub fn fields(self) -> &'static [&'static str] {
            match self {
                ConditionKind::Converged => &[],
                ConditionKind::Height => &["node", "at_least"],
                ConditionKind::Balance => &["node", "equals", "at_least"],
                ConditionKind::Reorg => &["node", "depth"],
                ConditionKind::OneSpend => &["labels"],
                ConditionKind::Seen => &["node", "label"],
                ConditionKind::Banned => &["node"],
                ConditionKind::Reversed => &["node", "label"],
                ConditionKind::SelfishGain => &["node"],
            }
        }
    }
}

/// Line and column (from 1) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Scenario {
    /// Read and check a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
        Scenario::parse(&text).map_err(|e| format!("scenario {}: {e}", path.display()))
    }

    /// Parse and check scenario text (every step, before anything runs). A mistake is
    /// reported with its step, its field and where it is (line and column).
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let doc: file::Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        if doc.step.is_empty() {
            return Err("no steps: add [[step]] tables".into());
        }
        let mut steps = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        for (i, raw) in doc.step.into_iter().enumerate() {
            let n = i + 1;
            let (line, col) = line_col(text, raw.span().start);
            let mut table = raw.into_inner();
            let action = match table.get("do") {
                Some(toml::Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            let err = |msg: &dyn std::fmt::Display| match &action {
                Some(a) => format!("step {n} ({a}) at line {line}, column {col}: {msg}"),
                None => format!("step {n} at line {line}, column {col}: {msg}"),
            };
            let say = match table.remove("say") {
                None => None,
                Some(toml::Value::String(s)) if s.chars().count() <= MAX_SAY => Some(s),
                Some(toml::Value::String(_)) => {
                    return Err(err(&format!("`say` is longer than {MAX_SAY} characters")));
                }
                Some(v) => return Err(err(&format!("`say` must be text, not {v}"))),
            };
            let step: file::Step = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| err(&e.message().trim_end()))?;
            let (after, action) = step_action(step, &mut labels).map_err(|e| err(&e))?;
            steps.push(Step { after, action, say });
        }
        // Labels a condition names must be set by an earlier send.
        for (i, s) in steps.iter().enumerate() {
            let named: Vec<&String> = match &s.action {
                Action::Wait { until: c, .. } | Action::Expect { that: c, .. } => match c {
                    Condition::OneSpend { labels: ls } => ls.iter().collect(),
                    Condition::Seen { label, .. } | Condition::Reversed { label, .. } => {
                        vec![label]
                    }
                    _ => vec![],
                },
                _ => vec![],
            };
            for l in named {
                if !labels.contains(l) {
                    return Err(format!("step {}: no send has the label {l:?}", i + 1));
                }
            }
        }
        Ok(Scenario {
            name: doc.name,
            description: doc.description,
            nodes: doc.nodes.map_or(1, |n| n.0),
            topology: doc.topology,
            network: doc.network,
            power: doc.power.map(|p| p.into_iter().map(|p| p.0).collect()),
            block_interval: doc.block_interval.map(|s| s.0),
            steps,
        })
    }
}

/// A step's delay and action, with the checks that span fields.
fn step_action(step: file::Step, labels: &mut Vec<String>) -> Result<(f64, Action), String> {
    use file::Step as S;
    Ok(match step {
        S::Mine {
            after,
            node,
            blocks,
        } => (
            after.0,
            Action::Mine {
                node: node.0,
                blocks: blocks.0,
            },
        ),
        S::Send {
            after,
            from,
            to,
            amount,
            via,
            label,
        } => {
            if from.0 == to.0 {
                return Err("`from` and `to` must be different nodes".into());
            }
            if amount.0 == Amount::ZERO {
                return Err("`amount` must be above zero".into());
            }
            if let Some(l) = &label {
                if labels.contains(l) {
                    return Err(format!("label {l:?} is used twice"));
                }
                labels.push(l.clone());
            }
            (
                after.0,
                Action::Send {
                    from: from.0,
                    to: to.0,
                    amount: amount.0,
                    via: via.map(|v| v.0),
                    label,
                },
            )
        }
        S::Partition { after, nodes } => {
            if nodes.0.is_empty() {
                return Err("`nodes` is required (a node or a list)".into());
            }
            (after.0, Action::Partition { nodes: nodes.0 })
        }
        S::Heal { after, nodes } => (after.0, Action::Heal { nodes: nodes.0 }),
        S::Stop { after, node } => (after.0, Action::Stop { node: node.0 }),
        S::Restart { after, node } => (after.0, Action::Restart { node: node.0 }),
        S::Mining { after, node, on } => (after.0, Action::Mining { node: node.0, on }),
        S::Power { after, node, power } => (
            after.0,
            Action::Power {
                node: node.0,
                power: power.0,
            },
        ),
        S::Attack {
            after,
            kind,
            node,
            within,
            victim,
            amount,
            confirmations,
            label,
            reach,
            blocks,
        } => {
            let within = within.map_or(60.0, |w| w.0);
            let given = [
                ("victim", victim.is_some()),
                ("amount", amount.is_some()),
                ("confirmations", confirmations.is_some()),
                ("label", label.is_some()),
                ("reach", reach.is_some()),
                ("blocks", blocks.is_some()),
            ];
            let (name, takes): (&str, &[&str]) = match kind {
                file::AttackKind::InvalidBlock => ("invalid_block", &[]),
                file::AttackKind::Majority => {
                    ("majority", &["victim", "amount", "confirmations", "label"])
                }
                file::AttackKind::Selfish => ("selfish", &["reach", "blocks"]),
            };
            if let Some((k, _)) = given.iter().find(|(k, set)| *set && !takes.contains(k)) {
                return Err(format!("`{k}` does not apply to the {name} attack"));
            }
            let action = match kind {
                file::AttackKind::Selfish => {
                    let reach = reach.map(|r| r.0).unwrap_or_default();
                    if reach.contains(&node.0) {
                        return Err("`reach` names the selfish node itself".into());
                    }
                    Action::Selfish {
                        node: node.0,
                        reach,
                        blocks: blocks.map_or(300, |b| b.0),
                        within,
                    }
                }
                file::AttackKind::InvalidBlock => Action::InvalidBlock {
                    node: node.0,
                    within,
                },
                file::AttackKind::Majority => {
                    let victim = victim
                        .ok_or("`victim` (the node paid) is required for the majority attack")?
                        .0;
                    if victim == node.0 {
                        return Err("the attacker cannot be its own `victim`".into());
                    }
                    let confirmations = confirmations.unwrap_or(3);
                    if !(1..=100).contains(&confirmations) {
                        return Err(format!(
                            "`confirmations` must be 1 to 100, not {confirmations}"
                        ));
                    }
                    if let Some(l) = &label {
                        if labels.contains(l) {
                            return Err(format!("label {l:?} is used twice"));
                        }
                        labels.push(l.clone());
                    }
                    let amount = amount
                        .ok_or("`amount` (coins paid to the victim) is required")?
                        .0;
                    if amount == Amount::ZERO {
                        return Err("`amount` must be above zero".into());
                    }
                    Action::MajorityAttack {
                        attacker: node.0,
                        victim,
                        amount,
                        confirmations,
                        label,
                        within,
                    }
                }
            };
            (after.0, action)
        }
        S::Sleep { after, seconds } => (after.0, Action::Sleep { seconds: seconds.0 }),
        S::Wait(c) => {
            let (after, until, within) = check(c, true)?;
            (after, Action::Wait { until, within })
        }
        S::Expect(c) => {
            let (after, that, within) = check(c, false)?;
            (after, Action::Expect { that, within })
        }
    })
}

/// A `wait` (`is_wait`, its condition under `until`) or an `expect` (under `that`): its delay,
/// its condition and how long it may take.
fn check(c: file::Check, is_wait: bool) -> Result<(f64, Condition, f64), String> {
    let (kind, other, step, key, not) = if is_wait {
        (c.until, c.that.is_some(), "a wait", "until", "that")
    } else {
        (c.that, c.until.is_some(), "an expect", "that", "until")
    };
    let kind = kind.ok_or_else(|| format!("`{key}` (the condition) is required"))?;
    if other {
        return Err(format!(
            "{step} names its condition with `{key}`, not `{not}`"
        ));
    }
    let within = c.within.map_or(10.0, |w| w.0);
    Ok((c.after.0, condition(kind, c)?, within))
}

/// A condition from its kind and the fields beside it.
fn condition(kind: file::ConditionKind, f: file::Check) -> Result<Condition, String> {
    use file::ConditionKind as K;
    for k in f.given() {
        if !kind.fields().contains(&k) {
            return Err(format!(
                "`{k}` does not apply to the {} condition",
                kind.name()
            ));
        }
    }
    let node = |what: &str| {
        f.node
            .map(|n| n.0)
            .ok_or_else(|| format!("`node` (a node number) is required for {what}"))
    };
    Ok(match kind {
        K::Converged => Condition::Converged,
        K::Height => Condition::Height {
            node: node("height")?,
            at_least: match &f.at_least {
                Some(toml::Value::Integer(h)) if *h >= 0 => *h as u64,
                Some(v) => return Err(format!("`at_least` must be a height, not {v}")),
                None => return Err("`at_least` (a height) is required".into()),
            },
        },
        K::Balance => {
            let at_least = match &f.at_least {
                Some(v) => Some(file::coins(v).map_err(|e| format!("`at_least`: {e}"))?),
                None => None,
            };
            let equals = f.equals.map(|c| c.0);
            if equals.is_none() && at_least.is_none() {
                return Err("give `equals` or `at_least` (coins)".into());
            }
            Condition::Balance {
                node: node("balance")?,
                equals,
                at_least,
            }
        }
        K::Reorg => Condition::Reorg {
            node: f.node.map(|n| n.0),
            depth: f.depth.unwrap_or(1).max(1) as usize,
        },
        K::Seen => Condition::Seen {
            node: node("seen")?,
            label: f
                .label
                .ok_or_else(|| "`label` (a send label) is required".to_string())?,
        },
        K::Banned => Condition::Banned {
            node: node("banned")?,
        },
        K::Reversed => Condition::Reversed {
            node: node("reversed")?,
            label: f
                .label
                .ok_or_else(|| "`label` (a send label) is required".to_string())?,
        },
        K::SelfishGain => Condition::SelfishGain {
            node: node("selfish_gain")?,
        },
        K::OneSpend => {
            let labels = f
                .labels
                .ok_or_else(|| "`labels` (a list of send labels) is required".to_string())?;
            if labels.len() < 2 {
                return Err("`labels` needs at least two payments".into());
            }
            Condition::OneSpend { labels }
        }
    })
}

impl Scenario {
    /// The highest node index any step names.
    pub fn highest_node(&self) -> usize {
        let mut m = 0;
        let mut see = |i: usize| m = m.max(i);
        for s in &self.steps {
            match &s.action {
                Action::Mine { node, .. }
                | Action::Stop { node }
                | Action::Restart { node }
                | Action::Mining { node, .. }
                | Action::Power { node, .. }
                | Action::InvalidBlock { node, .. } => see(*node),
                Action::Selfish { node, reach, .. } => {
                    see(*node);
                    reach.iter().for_each(|n| see(*n));
                }
                Action::MajorityAttack {
                    attacker, victim, ..
                } => {
                    see(*attacker);
                    see(*victim);
                }
                Action::Send { from, to, via, .. } => {
                    see(*from);
                    see(*to);
                    if let Some(v) = via {
                        see(*v);
                    }
                }
                Action::Partition { nodes } | Action::Heal { nodes } => {
                    nodes.iter().for_each(|n| see(*n))
                }
                Action::Wait { until: c, .. } | Action::Expect { that: c, .. } => match c {
                    Condition::Height { node, .. }
                    | Condition::Balance { node, .. }
                    | Condition::Seen { node, .. }
                    | Condition::Banned { node }
                    | Condition::SelfishGain { node }
                    | Condition::Reversed { node, .. } => see(*node),
                    Condition::Reorg { node: Some(n), .. } => see(*n),
                    _ => {}
                },
                Action::Sleep { .. } => {}
            }
        }
        m
    }

    /// Whether the scenario fits a demo of `nodes` nodes.
    pub fn check_nodes(&self, nodes: usize) -> Result<(), String> {
        let need = self.highest_node() + 1;
        if need > nodes {
            return Err(format!(
                "the scenario names node {need} but the demo has {nodes} nodes (use --nodes {need})"
            ));
        }
        if let Some(p) = &self.power
            && p.len() > nodes
        {
            return Err(format!(
                "the scenario's `power` gives {} nodes their power but the demo has {nodes} \
                 nodes (use --nodes {})",
                p.len(),
                p.len()
            ));
        }
        Ok(())
    }
}

fn nodes_text(nodes: &[usize]) -> String {
    let v: Vec<String> = nodes.iter().map(|n| (n + 1).to_string()).collect();
    v.join(",")
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::Converged => f.write_str("all nodes on one tip"),
            Condition::Height { node, at_least } => {
                write!(f, "node {} at height ≥ {at_least}", node + 1)
            }
            Condition::Balance {
                node,
                equals,
                at_least,
            } => match (equals, at_least) {
                (Some(e), _) => write!(f, "node {} balance = {e}", node + 1),
                (_, Some(a)) => write!(f, "node {} balance ≥ {a}", node + 1),
                _ => write!(f, "node {} balance", node + 1),
            },
            Condition::Reorg {
                node: Some(n),
                depth,
            } => {
                write!(f, "reorg of depth ≥ {depth} on node {}", n + 1)
            }
            Condition::Reorg { node: None, depth } => {
                write!(f, "reorg of depth ≥ {depth} on a node")
            }
            Condition::OneSpend { labels } => {
                write!(f, "exactly one of {} confirmed", labels.join(" / "))
            }
            Condition::Seen { node, label } => {
                write!(f, "node {} has payment {label}", node + 1)
            }
            Condition::Banned { node } => {
                write!(f, "node {} banned by every other node", node + 1)
            }
            Condition::Reversed { node, label } => {
                write!(f, "payment {label} reversed on node {}", node + 1)
            }
            Condition::SelfishGain { node } => write!(
                f,
                "node {} earned more of the best chain than its share of the blocks",
                node + 1
            ),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Mine { node, blocks } => {
                write!(f, "mine {blocks} block(s) on node {}", node + 1)
            }
            Action::Send {
                from,
                to,
                amount,
                via,
                label,
            } => {
                write!(f, "send {amount} from node {} to node {}", from + 1, to + 1)?;
                if let Some(v) = via {
                    write!(f, " via node {}", v + 1)?;
                }
                if let Some(l) = label {
                    write!(f, " [{l}]")?;
                }
                Ok(())
            }
            Action::Partition { nodes } => write!(f, "partition node(s) {}", nodes_text(nodes)),
            Action::Heal { nodes } if nodes.is_empty() => f.write_str("heal every partition"),
            Action::Heal { nodes } => write!(f, "heal node(s) {}", nodes_text(nodes)),
            Action::Stop { node } => write!(f, "stop node {}", node + 1),
            Action::Restart { node } => write!(f, "restart node {}", node + 1),
            Action::Mining { node, on } => {
                write!(
                    f,
                    "mining {} on node {}",
                    if *on { "on" } else { "off" },
                    node + 1
                )
            }
            Action::Power { node, power } => {
                write!(f, "mining power {power} on node {}", node + 1)
            }
            Action::InvalidBlock { node, .. } => {
                write!(f, "node {} relays an invalid block", node + 1)
            }
            Action::Selfish { node, blocks, .. } => {
                write!(f, "node {} mines selfishly for {blocks} blocks", node + 1)
            }
            Action::MajorityAttack {
                attacker,
                victim,
                amount,
                confirmations,
                ..
            } => write!(
                f,
                "node {} pays node {} {amount} and reverses it after {confirmations} \
                 confirmation{}",
                attacker + 1,
                victim + 1,
                if *confirmations == 1 { "" } else { "s" }
            ),
            Action::Sleep { seconds } => write!(f, "sleep {seconds} s"),
            Action::Wait { until, within } => write!(f, "wait until {until} (≤ {within} s)"),
            Action::Expect { that, within } => write!(f, "expect {that} (≤ {within} s)"),
        }
    }
}

/// How one step ended.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// 1-based.
    pub index: usize,
    pub text: String,
    pub ok: bool,
    /// What happened (heights, txid, how long the condition took) or why it failed.
    pub detail: String,
    /// Whether this step is an expectation (counted in the verdict).
    pub expectation: bool,
    /// Time the step took.
    pub took: Duration,
    /// Time since the scenario started, when the step ended.
    pub at: Duration,
}

impl std::fmt::Display for StepReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = match (self.ok, self.expectation) {
            (true, true) => "PASS",
            (true, false) => "ok  ",
            (false, _) => "FAIL",
        };
        write!(
            f,
            "{:>7.2}s  {:>2}. {mark}  {}",
            self.at.as_secs_f64(),
            self.index,
            self.text
        )?;
        if !self.detail.is_empty() {
            write!(f, " — {}", self.detail)?;
        }
        Ok(())
    }
}

/// Progress of a running scenario.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    Started {
        index: usize,
        text: String,
        say: Option<String>,
    },
    Finished(StepReport),
}

/// The whole run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScenarioReport {
    pub steps: Vec<StepReport>,
    /// Steps not run because an action before them failed.
    pub skipped: usize,
}

impl ScenarioReport {
    pub fn passed(&self) -> bool {
        self.skipped == 0 && self.steps.iter().all(|s| s.ok)
    }
    pub fn expectations(&self) -> (usize, usize) {
        let e: Vec<&StepReport> = self.steps.iter().filter(|s| s.expectation).collect();
        (e.iter().filter(|s| s.ok).count(), e.len())
    }
}

/// Sleep `d` of real time, counting only time when not paused.
pub async fn pausable_sleep(d: Duration, pace: &mut watch::Receiver<Pace>) {
    paced_sleep(d, pace, false).await;
}

/// Sleep `d`, counting only time when not paused; with `scaled`, `d` is time as written and
/// passes at the pace's speed (at 200 %, in half the time).
async fn paced_sleep(d: Duration, pace: &mut watch::Receiver<Pace>, scaled: bool) {
    let mut left = d;
    while !left.is_zero() {
        let p = *pace.borrow_and_update();
        if p.paused {
            if pace.changed().await.is_err() {
                return;
            }
            continue;
        }
        let speed = if scaled { p.speed_pct.max(1) } else { 100 };
        // `left` is written time; a slice of real time covers `speed` % of it.
        let real = (left * 100 / speed).min(Duration::from_millis(50));
        tokio::time::sleep(real).await;
        left = left.saturating_sub(real * speed / 100);
    }
}

/// Wait until step `index` (from 1) may start: not paused, and granted in step mode.
async fn wait_turn(pace: &mut watch::Receiver<Pace>, index: usize) {
    loop {
        let p = *pace.borrow_and_update();
        if !p.paused && (!p.stepping || p.granted >= index) {
            return;
        }
        if pace.changed().await.is_err() {
            return;
        }
    }
}

/// Evaluate `c` now: Ok(what was seen) when it holds, Err(what was seen) when not.
fn evaluate(demo: &Demo, c: &Condition, labels: &HashMap<String, Txid>) -> Result<String, String> {
    match c {
        Condition::Converged => {
            let running: Vec<usize> = (0..demo.len()).filter(|&i| demo.is_running(i)).collect();
            match demo.common_tip() {
                Some(t) => {
                    let h = demo
                        .running(running.first().copied().unwrap_or(0))
                        .map(|r| r.node.snapshot().height)
                        .unwrap_or(0);
                    Ok(format!(
                        "{} nodes at height {h}, tip {}",
                        running.len(),
                        t.short()
                    ))
                }
                None => {
                    let st = demo.status(false);
                    let v: Vec<String> = st
                        .iter()
                        .filter(|s| s.running)
                        .map(|s| {
                            format!("{}:{}@{}", s.index + 1, s.height, &s.tip.to_string()[..6])
                        })
                        .collect();
                    Err(format!("tips differ: {}", v.join(" ")))
                }
            }
        }
        Condition::Height { node, at_least } => {
            let h = demo
                .running(*node)
                .map(|r| r.node.snapshot().height)
                .ok_or_else(|| format!("node {} is stopped", node + 1))?;
            if h >= *at_least {
                Ok(format!("height {h}"))
            } else {
                Err(format!("height {h}"))
            }
        }
        Condition::Balance {
            node,
            equals,
            at_least,
        } => {
            let b = demo
                .balance(*node)
                .ok_or_else(|| format!("node {} is stopped", node + 1))?;
            let ok = equals.is_none_or(|e| b.confirmed == e)
                && at_least.is_none_or(|a| b.confirmed >= a);
            let seen = format!(
                "confirmed {} (pending {}, immature {})",
                b.confirmed, b.unconfirmed, b.immature
            );
            if ok { Ok(seen) } else { Err(seen) }
        }
        Condition::Reorg { node, depth } => {
            let d = demo.deepest_reorg(*node);
            let who = node.map_or("the deepest reorganisation on any node".to_string(), |n| {
                format!("node {}'s deepest reorganisation", n + 1)
            });
            let seen = format!("{who}: {d} block{} replaced", if d == 1 { "" } else { "s" });
            if d >= *depth { Ok(seen) } else { Err(seen) }
        }
        Condition::Seen { node, label } => {
            let Some(txid) = labels.get(label) else {
                return Err(format!("payment {label:?} was never sent"));
            };
            match demo.tx_state(*node, txid) {
                Some(true) => Ok("confirmed there".into()),
                Some(false) => Ok("in its mempool".into()),
                None => Err("not there".into()),
            }
        }
        Condition::Banned { node } => {
            let others: Vec<usize> = (0..demo.len())
                .filter(|&j| j != *node && demo.is_running(j))
                .collect();
            let bans = demo.banned_by(*node);
            let by: Vec<usize> = bans.iter().map(|b| b.node).collect();
            let missing: Vec<usize> = others.iter().copied().filter(|j| !by.contains(j)).collect();
            let mut reasons: Vec<&str> = bans.iter().map(|b| b.reason.as_str()).collect();
            reasons.sort_unstable();
            reasons.dedup();
            if !others.is_empty() && missing.is_empty() {
                Ok(format!(
                    "node {} banned by nodes {}: {}",
                    node + 1,
                    nodes_text(&by),
                    reasons.join("; ")
                ))
            } else if by.is_empty() {
                Err(format!("no node bans node {}", node + 1))
            } else {
                Err(format!(
                    "banned by nodes {} but not by {}",
                    nodes_text(&by),
                    nodes_text(&missing)
                ))
            }
        }
        Condition::Reversed { node, label } => {
            let Some(txid) = labels.get(label) else {
                return Err(format!("payment {label:?} was never sent"));
            };
            if !demo.is_running(*node) {
                return Err(format!("node {} is stopped", node + 1));
            }
            match (demo.tx_place(*node, txid), demo.conflict(*node, txid)) {
                (Some(Some((h, c))), _) => Err(format!(
                    "payment {label} is confirmed at height {h} on node {} ({c} confirmation{})",
                    node + 1,
                    if c == 1 { "" } else { "s" }
                )),
                (Some(None), _) => Err(format!(
                    "payment {label} is back in node {}'s mempool",
                    node + 1
                )),
                (None, Some(_)) if demo.wallet_lists(*node, txid) != Some(false) => Err(format!(
                    "payment {label} is conflicted, but node {}'s wallet still lists it",
                    node + 1
                )),
                (None, Some((by, h))) => Ok(format!(
                    "payment {label} is gone from node {}'s chain, mempool and wallet: \
                     conflicted, its coin is spent by {} at height {h}",
                    node + 1,
                    by.short(),
                )),
                (None, None) => Err(format!(
                    "payment {label} is not on node {}, but nothing there spends its coin",
                    node + 1
                )),
            }
        }
        Condition::SelfishGain { node } => {
            let Some(o) = demo.selfish_outcome().filter(|o| o.node == *node) else {
                return Err(format!("node {} has not mined selfishly", node + 1));
            };
            let gamma = o.gamma().unwrap_or(0.0);
            let gamma_text = match o.gamma() {
                Some(g) => format!("γ = {g:.2}"),
                None => "γ = 0 (not measured: no tie settled by an honest block)".to_string(),
            };
            let alpha = o.found_share();
            let m = super::controller::model_gain(alpha, gamma, o.blocks);
            let seen = format!(
                "{:.1}% of the best chain against {:.1}% of the blocks found: {:+.1} points; \
                 Eyal–Sirer's model at α = {:.1}%, {gamma_text} gives {:+.1} ± {:.1} points \
                 over {} blocks (share {:.1}%), and no gain in {:.1}% of its runs",
                100.0 * o.share(),
                100.0 * o.found_share(),
                100.0 * o.gain(),
                100.0 * alpha,
                100.0 * m.mean,
                100.0 * m.sd,
                o.blocks,
                100.0 * super::controller::eyal_sirer_share(alpha, gamma),
                100.0 * m.none
            );
            if o.gain() > 0.0 { Ok(seen) } else { Err(seen) }
        }
        Condition::OneSpend { labels: ls } => {
            let running: Vec<usize> = (0..demo.len()).filter(|&i| demo.is_running(i)).collect();
            let mut confirmed_everywhere = Vec::new();
            let mut elsewhere = Vec::new();
            for l in ls {
                let Some(txid) = labels.get(l) else {
                    return Err(format!("payment {l:?} was never sent"));
                };
                let states: Vec<Option<bool>> =
                    running.iter().map(|&i| demo.tx_state(i, txid)).collect();
                if states.iter().all(|s| *s == Some(true)) {
                    confirmed_everywhere.push(l.clone());
                } else if states.iter().any(|s| s.is_some()) {
                    elsewhere.push(l.clone());
                }
            }
            if confirmed_everywhere.len() == 1 && elsewhere.is_empty() {
                // Say which payment survived, where it is confirmed and how deep.
                let winner = &confirmed_everywhere[0];
                let txid = labels.get(winner).copied().unwrap_or(Txid([0; 32]));
                let places: Vec<(usize, u64, u64)> = running
                    .iter()
                    .filter_map(|&i| match demo.tx_place(i, &txid) {
                        Some(Some((h, c))) => Some((i, h, c)),
                        _ => None,
                    })
                    .collect();
                let heights: std::collections::BTreeSet<u64> = places.iter().map(|p| p.1).collect();
                let nodes = nodes_text(&places.iter().map(|p| p.0).collect::<Vec<_>>());
                let at = match (heights.first(), heights.len()) {
                    (Some(h), 1) => format!("at height {h}"),
                    _ => format!(
                        "at heights {}",
                        heights
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join("/")
                    ),
                };
                let deepest = places.iter().map(|p| p.2).min().unwrap_or(0);
                let losers: Vec<&String> = ls.iter().filter(|l| *l != winner).collect();
                Ok(format!(
                    "payment {winner} survived: confirmed {at} on nodes {nodes} ({deepest} \
                     confirmation{}); {} is in no node's chain or mempool",
                    if deepest == 1 { "" } else { "s" },
                    losers
                        .iter()
                        .map(|l| l.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            } else {
                Err(format!(
                    "confirmed on every node: [{}]; still on some node (chain or mempool): [{}]",
                    confirmed_everywhere.join(", "),
                    elsewhere.join(", ")
                ))
            }
        }
    }
}

/// Poll `c` every 50 ms (paused time does not count) until it holds or `within` passes.
async fn wait_for(
    demo: &Demo,
    c: &Condition,
    within: f64,
    labels: &HashMap<String, Txid>,
    pause: &mut watch::Receiver<Pace>,
) -> Result<String, String> {
    let limit = Duration::from_secs_f64(within);
    let mut waited = Duration::ZERO;
    loop {
        let start = Instant::now();
        match evaluate(demo, c, labels) {
            Ok(s) => {
                return Ok(format!("{s} after {:.2} s", waited.as_secs_f64()));
            }
            Err(s) if waited >= limit => return Err(format!("not within {within} s: {s}")),
            Err(_) => {}
        }
        pausable_sleep(Duration::from_millis(50), pause).await;
        waited += start.elapsed().min(Duration::from_millis(200));
    }
}

/// Play `sc` on `demo` at the `pace` it is given (and changed to while it plays: paused, step
/// by step, faster or slower); `progress` hears each step start and end. A failed action stops
/// the run (the steps after it are skipped); a failed expectation is reported and the run
/// goes on.
pub async fn run(
    demo: &Demo,
    sc: &Scenario,
    mut pause: watch::Receiver<Pace>,
    mut progress: impl FnMut(Progress),
) -> ScenarioReport {
    let t0 = Instant::now();
    let mut report = ScenarioReport::default();
    let mut labels: HashMap<String, Txid> = HashMap::new();
    for (i, step) in sc.steps.iter().enumerate() {
        let index = i + 1;
        let text = step.action.to_string();
        // Time to read what the last step did (step by step, the reader sets the pace).
        let p = *pause.borrow();
        if index > 1 && !p.beat.is_zero() && !p.stepping {
            paced_sleep(p.beat, &mut pause, true).await;
        }
        wait_turn(&mut pause, index).await;
        if step.after > 0.0 {
            paced_sleep(Duration::from_secs_f64(step.after), &mut pause, true).await;
        }
        progress(Progress::Started {
            index,
            text: text.clone(),
            say: step.say.clone(),
        });
        let started = Instant::now();
        let mut expectation = false;
        let result: Result<String, String> = match &step.action {
            Action::Mine { node, blocks } => match demo.mine(*node, *blocks).await {
                Ok(h) => {
                    let height = demo
                        .running(*node)
                        .map(|r| r.node.snapshot().height)
                        .unwrap_or(0);
                    Ok(format!(
                        "{} mined, height {height}, tip {}",
                        h.len(),
                        h.last().map(|x| x.short()).unwrap_or_default()
                    ))
                }
                Err(e) => Err(e.to_string()),
            },
            Action::Send {
                from,
                to,
                amount,
                via,
                label,
            } => match demo.send(*from, *to, *amount, *via).await {
                Ok(txid) => {
                    if let Some(l) = label {
                        labels.insert(l.clone(), txid);
                    }
                    Ok(format!("txid {}", txid.short()))
                }
                Err(e) => Err(e.to_string()),
            },
            Action::Partition { nodes } => demo
                .partition(nodes)
                .await
                .map(|_| String::new())
                .map_err(|e| e.to_string()),
            Action::Heal { nodes } => demo
                .heal(nodes)
                .await
                .map(|_| String::new())
                .map_err(|e| e.to_string()),
            Action::Stop { node } => demo
                .stop(*node)
                .await
                .map(|_| String::new())
                .map_err(|e| e.to_string()),
            Action::Restart { node } => demo
                .restart(*node)
                .await
                .map(|_| String::new())
                .map_err(|e| e.to_string()),
            Action::Mining { node, on } => demo
                .set_mining(*node, *on)
                .await
                .map(|_| String::new())
                .map_err(|e| e.to_string()),
            Action::Power { node, power } => demo
                .set_power(*node, *power)
                .await
                .map(|_| String::new())
                .map_err(|e| e.to_string()),
            Action::InvalidBlock { node, within } => demo
                .relay_invalid_block(*node, Duration::from_secs_f64(*within))
                .await
                .map(|r| {
                    let ends: Vec<String> = r
                        .offered
                        .iter()
                        .map(|(j, why)| {
                            format!(
                                "node {}: {}",
                                j + 1,
                                why.as_deref().unwrap_or("still open at the limit")
                            )
                        })
                        .collect();
                    format!(
                        "block {} at height {} claims {} where {} is allowed; {}",
                        r.block.short(),
                        r.height,
                        r.claimed,
                        r.allowed,
                        ends.join("; ")
                    )
                })
                .map_err(|e| e.to_string()),
            Action::MajorityAttack {
                attacker,
                victim,
                amount,
                confirmations,
                label,
                within,
            } => {
                let attack = super::controller::MajorityAttack {
                    attacker: *attacker,
                    victim: *victim,
                    amount: *amount,
                    confirmations: *confirmations,
                    within: Duration::from_secs_f64(*within),
                };
                match demo.majority_attack(&attack).await {
                    Ok(o) => {
                        if let Some(l) = label {
                            labels.insert(l.clone(), o.payment);
                        }
                        Ok(o.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Action::Selfish {
                node,
                reach,
                blocks,
                within,
            } => {
                let run = super::controller::SelfishMining {
                    node: *node,
                    reach: reach.clone(),
                    blocks: *blocks,
                    within: Duration::from_secs_f64(*within),
                };
                demo.selfish_mining(&run)
                    .await
                    .map(|o| o.to_string())
                    .map_err(|e| e.to_string())
            }
            Action::Sleep { seconds } => {
                paced_sleep(Duration::from_secs_f64(*seconds), &mut pause, true).await;
                Ok(String::new())
            }
            Action::Wait { until, within } => {
                wait_for(demo, until, *within, &labels, &mut pause).await
            }
            Action::Expect { that, within } => {
                expectation = true;
                wait_for(demo, that, *within, &labels, &mut pause).await
            }
        };
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        let r = StepReport {
            index,
            text,
            ok,
            detail,
            expectation,
            took: started.elapsed(),
            at: t0.elapsed(),
        };
        progress(Progress::Finished(r.clone()));
        report.steps.push(r);
        if !ok && !expectation {
            report.skipped = sc.steps.len() - index;
            break;
        }
    }
    report
}
