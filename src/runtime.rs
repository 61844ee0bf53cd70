//! The composition root: the one place that starts a node's services — the node (store,
//! mempool, miner), its peer-to-peer network and its API server — in that order, and stops them
//! in the reverse order. `chain-tui node`, the dashboard, the demo, the CLI's offline commands
//! and the benchmarks all start nodes through [`Services::start`].
//!
//! One [`CancellationToken`] belongs to the services: tasks a front end runs beside them (paced
//! mining, a demo's observers) end when it is cancelled, which [`Services::shutdown`] does
//! first. Shutdown returns once the store is closed, so the same data dir opens again at once.

/// What the API puts up with from its clients (for front ends that start one).
pub use crate::api::ApiLimits;
use crate::api::{ApiContext, ApiServer};
use crate::node::p2p::{self, P2pConfig, P2pHandle};
use crate::node::{Node, NodeConfig, NodeError, NodeHandle};
use crate::wallet::Wallet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// What to start.
pub struct ServicesConfig {
    pub node: NodeConfig,
    /// The peer-to-peer network (`None`: a node on its own, as the benchmarks and the CLI's
    /// offline commands run it).
    pub p2p: Option<NetSetup>,
    /// The API server (`None`: no API).
    pub api: Option<ApiSetup>,
}

impl ServicesConfig {
    /// Only the node.
    pub fn node(node: NodeConfig) -> ServicesConfig {
        ServicesConfig {
            node,
            p2p: None,
            api: None,
        }
    }
}

/// The network part of [`ServicesConfig`].
pub struct NetSetup {
    pub config: P2pConfig,
    /// Where to listen instead when `config.listen` cannot be had (the demo asks for a node's
    /// previous port first, then any).
    pub fallback_listen: Option<SocketAddr>,
}

impl From<P2pConfig> for NetSetup {
    fn from(config: P2pConfig) -> NetSetup {
        NetSetup {
            config,
            fallback_listen: None,
        }
    }
}

/// The API part of [`ServicesConfig`].
pub struct ApiSetup {
    pub addr: SocketAddr,
    pub limits: ApiLimits,
    /// The node's wallet, or why there is none (wallet endpoints then say so).
    pub wallet: Result<Arc<Mutex<Wallet>>, String>,
    /// Threads for `POST /mine` and `POST /mining` when a request does not say.
    pub mine_threads: usize,
}

/// Why the services did not start (whatever had started is stopped again).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Api(#[from] crate::api::StartError),
}

/// Running services and their handles.
pub struct Services {
    pub node: NodeHandle,
    pub net: Option<P2pHandle>,
    api: Option<ApiServer>,
    cancel: CancellationToken,
}

impl Services {
    /// Start the node, then its network, then its API. On a failure the parts already started
    /// are stopped (in reverse order) before the error is returned.
    pub async fn start(config: ServicesConfig) -> Result<Services, StartError> {
        let node = Node::spawn(config.node)?;
        let mut services = Services {
            node,
            net: None,
            api: None,
            cancel: CancellationToken::new(),
        };
        if let Some(setup) = config.p2p {
            match start_net(&services.node, setup).await {
                Ok(net) => services.net = Some(net),
                Err(e) => {
                    services.stop_quietly().await;
                    return Err(e.into());
                }
            }
        }
        if let Some(setup) = config.api {
            let ctx = ApiContext {
                node: services.node.clone(),
                p2p: services.net.clone(),
                wallet: setup.wallet,
                mine_threads: setup.mine_threads.max(1),
            };
            match ApiServer::start_with(ctx, setup.addr, setup.limits).await {
                Ok(api) => services.api = Some(api),
                Err(e) => {
                    services.stop_quietly().await;
                    return Err(e.into());
                }
            }
        }
        Ok(services)
    }

    /// The network handle; an error for services started without a network.
    pub fn net(&self) -> Result<&P2pHandle, NodeError> {
        self.net.as_ref().ok_or(NodeError::NoNetwork)
    }

    /// The API server, when one was started.
    pub fn api(&self) -> Option<&ApiServer> {
        self.api.as_ref()
    }

    /// A token cancelled when the services begin to shut down: tasks run beside them watch it.
    pub fn token(&self) -> CancellationToken {
        self.cancel.child_token()
    }

    /// Cancel the side tasks, then stop the API, the network and the node, in that order, and
    /// wait until the store is closed. Every part is stopped even when an earlier one fails;
    /// the first failure is returned.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.cancel.cancel();
        if let Some(api) = self.api {
            api.shutdown().await;
        }
        let net = match &self.net {
            Some(net) => net.shutdown().await,
            None => Ok(()),
        };
        let node = self.node.shutdown().await;
        net.and(node)
    }

    async fn stop_quietly(self) {
        if let Err(e) = self.shutdown().await {
            tracing::warn!("stopping after a failed start: {e}");
        }
    }
}

async fn start_net(node: &NodeHandle, setup: NetSetup) -> Result<P2pHandle, NodeError> {
    let NetSetup {
        config,
        fallback_listen,
    } = setup;
    match fallback_listen {
        None => p2p::start(node.clone(), config).await,
        Some(other) => {
            let mut second = config.clone();
            second.listen = other;
            match p2p::start(node.clone(), config).await {
                Ok(net) => Ok(net),
                Err(e) => {
                    tracing::debug!("network start failed ({e}); trying {other}");
                    p2p::start(node.clone(), second).await
                }
            }
        }
    }
}

/// SIGTERM for a `select!` (never fires where there is no such signal); with
/// [`SigTerm::with_hangup`], SIGHUP too.
pub struct SigTerm {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Default for SigTerm {
    fn default() -> SigTerm {
        SigTerm::new()
    }
}

impl SigTerm {
    pub fn new() -> SigTerm {
        SigTerm {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
            #[cfg(unix)]
            hup: None,
        }
    }

    /// SIGTERM or SIGHUP: for what owns a terminal (the dashboards, the demo), which gets
    /// SIGHUP when the terminal goes (a closed window, `tmux kill-session`) and should then
    /// end as at `q`, cleaning up, rather than die where it stands. A node run from the command
    /// line keeps SIGHUP's default, so `nohup chain-tui node` goes on.
    pub fn with_hangup() -> SigTerm {
        #[cfg(unix)]
        {
            let mut s = SigTerm::new();
            s.hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            s
        }
        #[cfg(not(unix))]
        SigTerm::new()
    }

    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let term = async {
                match self.term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let hup = async {
                match self.hup.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = term => {}
                () = hup => {}
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    }
}

/// Until SIGINT (Ctrl-C) or SIGTERM: when a node run from the command line stops.
pub async fn stop_signal() {
    let mut term = SigTerm::new();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
