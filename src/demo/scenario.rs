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
//!
//! [[step]]
//! do = "mine"            # mine | send | partition | heal | stop | restart | mining | sleep | wait | expect
//! node = 1
//! blocks = 12
//! after = 0.5            # optional: seconds to wait before the step
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

/// One step: an optional delay, then the action. Node numbers are 0-based here.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub after: f64,
    pub action: Action,
}

/// A parsed scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub nodes: usize,
    pub topology: Option<Topology>,
    pub network: Option<Network>,
    pub steps: Vec<Step>,
}

/// Longest wait, sleep or delay a step may ask for.
const MAX_SECONDS: f64 = 3600.0;
/// Most blocks one step may mine.
const MAX_BLOCKS: u64 = 100_000;

fn fields_of(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "mine" => &["node", "blocks"],
        "send" => &["from", "to", "amount", "via", "label"],
        "partition" => &["nodes"],
        "heal" => &["nodes"],
        "stop" | "restart" => &["node"],
        "mining" => &["node", "on"],
        "sleep" => &["seconds"],
        "wait" => &[
            "until", "within", "node", "at_least", "equals", "depth", "labels", "label",
        ],
        "expect" => &[
            "that", "within", "node", "at_least", "equals", "depth", "labels", "label",
        ],
        _ => return None,
    })
}

const ACTIONS: &str = "mine, send, partition, heal, stop, restart, mining, sleep, wait, expect";

struct StepTable<'a> {
    n: usize,
    action: String,
    t: &'a toml::Table,
}

impl StepTable<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> String {
        format!("step {} ({}): {msg}", self.n, self.action)
    }
    fn get(&self, k: &str) -> Option<&toml::Value> {
        self.t.get(k)
    }
    fn node_opt(&self, k: &str) -> Result<Option<usize>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if (1..=64).contains(i) => Ok(Some(*i as usize - 1)),
            Some(v) => Err(self.err(format!("`{k}` must be a node number from 1, not {v}"))),
        }
    }
    fn node(&self, k: &str) -> Result<usize, String> {
        self.node_opt(k)?
            .ok_or_else(|| self.err(format!("`{k}` (a node number) is required")))
    }
    fn nodes(&self, k: &str) -> Result<Vec<usize>, String> {
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(toml::Value::Integer(_)) => Ok(vec![self.node(k)?]),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    toml::Value::Integer(i) if (1..=64).contains(i) => Ok(*i as usize - 1),
                    v => Err(self.err(format!("`{k}` must list node numbers, not {v}"))),
                })
                .collect(),
            Some(v) => Err(self.err(format!("`{k}` must be a node number or a list, not {v}"))),
        }
    }
    fn uint(&self, k: &str) -> Result<Option<u64>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(v) => Err(self.err(format!("`{k}` must be a whole number, not {v}"))),
        }
    }
    fn seconds(&self, k: &str) -> Result<Option<f64>, String> {
        let s = match self.get(k) {
            None => return Ok(None),
            Some(toml::Value::Integer(i)) => *i as f64,
            Some(toml::Value::Float(f)) => *f,
            Some(v) => return Err(self.err(format!("`{k}` must be a number of seconds, not {v}"))),
        };
        if !(0.0..=MAX_SECONDS).contains(&s) {
            return Err(self.err(format!("`{k}` must be 0 to {MAX_SECONDS} seconds, not {s}")));
        }
        Ok(Some(s))
    }
    fn coins(&self, k: &str) -> Result<Option<Amount>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Amount::parse_coins(s)
                .map(Some)
                .map_err(|e| self.err(format!("`{k}` = {s:?}: {e}"))),
            Some(toml::Value::Integer(i)) if *i >= 0 => Amount::parse_coins(&i.to_string())
                .map(Some)
                .map_err(|e| self.err(format!("`{k}`: {e}"))),
            Some(v) => Err(self.err(format!(
                "`{k}` must be an amount in coins as a string (\"2.5\"), not {v}"
            ))),
        }
    }
    fn string(&self, k: &str) -> Result<Option<String>, String> {
        match self.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(format!("`{k}` must be a string, not {v}"))),
        }
    }
    fn condition(&self, key: &str) -> Result<Condition, String> {
        let kind = self
            .string(key)?
            .ok_or_else(|| self.err(format!("`{key}` (the condition) is required")))?;
        let allowed: &[&str] = match kind.as_str() {
            "converged" => &[],
            "height" => &["node", "at_least"],
            "balance" => &["node", "equals", "at_least"],
            "reorg" => &["node", "depth"],
            "one_spend" => &["labels"],
            "seen" => &["node", "label"],
            other => {
                return Err(self.err(format!(
                    "unknown condition {other:?} (known: converged, height, balance, reorg, one_spend, seen)"
                )));
            }
        };
        for k in ["node", "at_least", "equals", "depth", "labels", "label"] {
            if self.get(k).is_some() && !allowed.contains(&k) {
                return Err(self.err(format!("`{k}` does not apply to the {kind} condition")));
            }
        }
        Ok(match kind.as_str() {
            "converged" => Condition::Converged,
            "height" => Condition::Height {
                node: self.node("node")?,
                at_least: self
                    .uint("at_least")?
                    .ok_or_else(|| self.err("`at_least` (a height) is required"))?,
            },
            "balance" => {
                let equals = self.coins("equals")?;
                let at_least = self.coins("at_least")?;
                if equals.is_none() && at_least.is_none() {
                    return Err(self.err("give `equals` or `at_least` (coins)"));
                }
                Condition::Balance {
                    node: self.node("node")?,
                    equals,
                    at_least,
                }
            }
            "reorg" => Condition::Reorg {
                node: self.node_opt("node")?,
                depth: self.uint("depth")?.unwrap_or(1).max(1) as usize,
            },
            "seen" => Condition::Seen {
                node: self.node("node")?,
                label: self
                    .string("label")?
                    .ok_or_else(|| self.err("`label` (a send label) is required"))?,
            },
            _ => {
                let labels: Vec<String> = match self.get("labels") {
                    Some(toml::Value::Array(a)) => a
                        .iter()
                        .map(|v| match v {
                            toml::Value::String(s) => Ok(s.clone()),
                            v => Err(self.err(format!("`labels` must be strings, not {v}"))),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(self.err("`labels` (a list of send labels) is required")),
                };
                if labels.len() < 2 {
                    return Err(self.err("`labels` needs at least two payments"));
                }
                Condition::OneSpend { labels }
            }
        })
    }
}

impl Scenario {
    /// Read and check a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
        Scenario::parse(&text).map_err(|e| format!("scenario {}: {e}", path.display()))
    }

    /// Parse and check scenario text (every step, before anything runs).
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        for k in doc.keys() {
            if ![
                "name",
                "description",
                "nodes",
                "topology",
                "network",
                "step",
            ]
            .contains(&k.as_str())
            {
                return Err(format!(
                    "unknown key `{k}` (known: name, description, nodes, topology, network, step)"
                ));
            }
        }
        let text_of = |k: &str| -> Result<String, String> {
            match doc.get(k) {
                None => Ok(String::new()),
                Some(toml::Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(format!("`{k}` must be a string, not {v}")),
            }
        };
        let name = text_of("name")?;
        let description = text_of("description")?;
        let nodes = match doc.get("nodes") {
            None => 1,
            Some(toml::Value::Integer(i)) if (1..=64).contains(i) => *i as usize,
            Some(v) => return Err(format!("`nodes` must be 1 to 64, not {v}")),
        };
        let topology = match doc.get("topology") {
            None => None,
            Some(toml::Value::String(s)) => Some(match s.as_str() {
                "line" => Topology::Line,
                "ring" => Topology::Ring,
                "mesh" => Topology::Mesh,
                _ => return Err(format!("`topology` must be line, ring or mesh, not {s:?}")),
            }),
            Some(v) => return Err(format!("`topology` must be a string, not {v}")),
        };
        let network = match doc.get("network") {
            None => None,
            Some(toml::Value::String(s)) => Some(match s.as_str() {
                "regtest" => Network::Regtest,
                "devnet" => Network::Devnet,
                _ => return Err(format!("`network` must be regtest or devnet, not {s:?}")),
            }),
            Some(v) => return Err(format!("`network` must be a string, not {v}")),
        };
        let raw_steps = match doc.get("step") {
            Some(toml::Value::Array(a)) => a.clone(),
            None => return Err("no steps: add [[step]] tables".into()),
            Some(_) => return Err("`step` must be an array of tables ([[step]])".into()),
        };
        let mut steps = Vec::new();
        let mut labels = Vec::new();
        for (i, v) in raw_steps.iter().enumerate() {
            let n = i + 1;
            let toml::Value::Table(t) = v else {
                return Err(format!("step {n}: must be a table ([[step]])"));
            };
            let action = match t.get("do") {
                Some(toml::Value::String(s)) => s.clone(),
                Some(v) => return Err(format!("step {n}: `do` must be a string, not {v}")),
                None => return Err(format!("step {n}: `do` is required (one of {ACTIONS})")),
            };
            let Some(allowed) = fields_of(&action) else {
                return Err(format!(
                    "step {n}: unknown action {action:?} (known: {ACTIONS})"
                ));
            };
            let st = StepTable { n, action, t };
            for k in t.keys() {
                if k != "do" && k != "after" && !allowed.contains(&k.as_str()) {
                    return Err(st.err(format!(
                        "unknown field `{k}` (allowed: after, {})",
                        allowed.join(", ")
                    )));
                }
            }
            let after = st.seconds("after")?.unwrap_or(0.0);
            let action = match st.action.as_str() {
                "mine" => {
                    let blocks = st
                        .uint("blocks")?
                        .ok_or_else(|| st.err("`blocks` is required"))?;
                    if blocks == 0 || blocks > MAX_BLOCKS {
                        return Err(st.err(format!("`blocks` must be 1 to {MAX_BLOCKS}")));
                    }
                    Action::Mine {
                        node: st.node("node")?,
                        blocks,
                    }
                }
                "send" => {
                    let from = st.node("from")?;
                    let to = st.node("to")?;
                    if from == to {
                        return Err(st.err("`from` and `to` must be different nodes"));
                    }
                    let amount = st
                        .coins("amount")?
                        .ok_or_else(|| st.err("`amount` is required"))?;
                    if amount == Amount::ZERO {
                        return Err(st.err("`amount` must be above zero"));
                    }
                    let label = st.string("label")?;
                    if let Some(l) = &label {
                        if labels.contains(l) {
                            return Err(st.err(format!("label {l:?} is used twice")));
                        }
                        labels.push(l.clone());
                    }
                    Action::Send {
                        from,
                        to,
                        amount,
                        via: st.node_opt("via")?,
                        label,
                    }
                }
                "partition" => {
                    let nodes = st.nodes("nodes")?;
                    if nodes.is_empty() {
                        return Err(st.err("`nodes` is required (a node or a list)"));
                    }
                    Action::Partition { nodes }
                }
                "heal" => Action::Heal {
                    nodes: st.nodes("nodes")?,
                },
                "stop" => Action::Stop {
                    node: st.node("node")?,
                },
                "restart" => Action::Restart {
                    node: st.node("node")?,
                },
                "mining" => Action::Mining {
                    node: st.node("node")?,
                    on: match st.get("on") {
                        Some(toml::Value::Boolean(b)) => *b,
                        Some(v) => {
                            return Err(st.err(format!("`on` must be true or false, not {v}")));
                        }
                        None => return Err(st.err("`on` (true or false) is required")),
                    },
                },
                "sleep" => Action::Sleep {
                    seconds: st
                        .seconds("seconds")?
                        .ok_or_else(|| st.err("`seconds` is required"))?,
                },
                "wait" => Action::Wait {
                    until: st.condition("until")?,
                    within: st.seconds("within")?.unwrap_or(10.0),
                },
                _ => Action::Expect {
                    that: st.condition("that")?,
                    within: st.seconds("within")?.unwrap_or(10.0),
                },
            };
            steps.push(Step { after, action });
        }
        // Labels a condition names must be set by an earlier send.
        for (i, s) in steps.iter().enumerate() {
            let named: Vec<&String> = match &s.action {
                Action::Wait { until: c, .. } | Action::Expect { that: c, .. } => match c {
                    Condition::OneSpend { labels: ls } => ls.iter().collect(),
                    Condition::Seen { label, .. } => vec![label],
                    _ => vec![],
                },
                _ => vec![],
            };
            {
                for l in named {
                    if !labels.contains(l) {
                        return Err(format!("step {}: no send has the label {l:?}", i + 1));
                    }
                }
            }
        }
        let sc = Scenario {
            name,
            description,
            nodes,
            topology,
            network,
            steps,
        };
        Ok(sc)
    }

    /// The highest node index any step names.
    pub fn highest_node(&self) -> usize {
        let mut m = 0;
        let mut see = |i: usize| m = m.max(i);
        for s in &self.steps {
            match &s.action {
                Action::Mine { node, .. }
                | Action::Stop { node }
                | Action::Restart { node }
                | Action::Mining { node, .. } => see(*node),
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
                    | Condition::Seen { node, .. } => see(*node),
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
    Started { index: usize, text: String },
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

/// Sleep `d`, counting only time when `pause` is false.
pub async fn pausable_sleep(d: Duration, pause: &mut watch::Receiver<bool>) {
    let mut left = d;
    while !left.is_zero() {
        if *pause.borrow_and_update() {
            if pause.changed().await.is_err() {
                return;
            }
            continue;
        }
        let slice = left.min(Duration::from_millis(50));
        tokio::time::sleep(slice).await;
        left = left.saturating_sub(slice);
    }
}

async fn wait_unpaused(pause: &mut watch::Receiver<bool>) {
    while *pause.borrow_and_update() {
        if pause.changed().await.is_err() {
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
            let seen = format!("deepest reorg {d}");
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
            let seen = format!(
                "confirmed on every node: [{}]; still somewhere: [{}]",
                confirmed_everywhere.join(", "),
                elsewhere.join(", ")
            );
            if confirmed_everywhere.len() == 1 && elsewhere.is_empty() {
                Ok(seen)
            } else {
                Err(seen)
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
    pause: &mut watch::Receiver<bool>,
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

/// Play `sc` on `demo`. `pause` (true: paused) holds the run between and inside steps;
/// `progress` hears each step start and end. A failed action stops the run (the steps after
/// it are skipped); a failed expectation is reported and the run goes on.
pub async fn run(
    demo: &Demo,
    sc: &Scenario,
    mut pause: watch::Receiver<bool>,
    mut progress: impl FnMut(Progress),
) -> ScenarioReport {
    let t0 = Instant::now();
    let mut report = ScenarioReport::default();
    let mut labels: HashMap<String, Txid> = HashMap::new();
    for (i, step) in sc.steps.iter().enumerate() {
        let index = i + 1;
        let text = step.action.to_string();
        wait_unpaused(&mut pause).await;
        if step.after > 0.0 {
            pausable_sleep(Duration::from_secs_f64(step.after), &mut pause).await;
        }
        progress(Progress::Started {
            index,
            text: text.clone(),
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
            Action::Sleep { seconds } => {
                pausable_sleep(Duration::from_secs_f64(*seconds), &mut pause).await;
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
