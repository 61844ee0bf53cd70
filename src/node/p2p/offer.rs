//! A block offered to peers by hand, as a tip, under a data dir's own node identity, without
//! the node: the one way to put a block the node would refuse on the wire. The demo's
//! invalid-block relayer uses it, so that honest nodes can be seen refusing the block and
//! banning its sender; nothing in the node calls it.

use crate::core::block::Block;
use crate::core::pow::Work;
use crate::net::identity::{NodeId, NodeKey, node_key_path};
use crate::net::transport::{Limits, Transport};
use crate::net::wire::{self, Hello, Message, PROTOCOL_VERSION};
use crate::node::NodeError;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Offer `block` (at `height`, its chain's work `work`) to each peer in `to` (address and the
/// identity it must prove) as the tip of the node of `data_dir`, with that node's key: answer
/// each peer's header request with the block's header, its block request with the block and
/// its pings, until it closes the connection or `within` passes. Per peer, in order: what it
/// said when it closed (or what ended the connection), or `None` if it was still open at the
/// limit. The node of `data_dir` should have no connection to those peers meanwhile, or the
/// two would be taken for duplicates. 127.0.0.1 only.
pub async fn offer_block(
    data_dir: &Path,
    network_genesis: crate::core::hash::BlockHash,
    to: &[(SocketAddr, NodeId)],
    block: &Block,
    height: u64,
    work: Work,
    within: Duration,
) -> Result<Vec<Option<String>>, NodeError> {
    let key = NodeKey::load(&node_key_path(data_dir)).map_err(NodeError::NodeKey)?;
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let transport = Transport::bind(local, &key, Limits::default())
        .map_err(|error| NodeError::Listen { addr: local, error })?;
    let hello = Hello {
        version: PROTOCOL_VERSION,
        genesis: network_genesis,
        height,
        tip: block.hash(),
        work: work.to_be_bytes(),
        listen: None,
        user_agent: "chain-tui-offer".into(),
    };
    let offers = to.iter().map(|&(addr, id)| {
        let (transport, hello) = (&transport, hello.clone());
        async move {
            tokio::time::timeout(within, offer(transport, addr, id, hello, block))
                .await
                .ok()
        }
    });
    let out = futures_util::future::join_all(offers).await;
    transport.close();
    Ok(out)
}

async fn offer(
    transport: &Transport,
    addr: SocketAddr,
    id: NodeId,
    hello: Hello,
    block: &Block,
) -> String {
    let conn = match transport.connect(addr, Some(id)).await {
        Ok(c) => c,
        Err(e) => return format!("no connection: {e}"),
    };
    let (mut send, mut recv) = match conn.conn.open_bi().await {
        Ok(s) => s,
        Err(e) => return format!("no stream: {e}"),
    };
    let hash = block.hash();
    let ended = |conn: &crate::net::transport::Connection| {
        conn.closed_because()
            .unwrap_or_else(|| "the connection ended".into())
    };
    if wire::write_message(&mut send, &Message::Hello(hello))
        .await
        .is_err()
    {
        return ended(&conn);
    }
    while let Ok(m) = wire::read_message(&mut recv).await {
        let answer = match m {
            Message::GetHeaders { .. } => Some(Message::Headers(vec![block.header])),
            Message::GetBlocks(hs) if hs.contains(&hash) => Some(Message::Block(block.clone())),
            Message::GetBlocks(hs) => Some(Message::NotFound(hs)),
            Message::Ping(n) => Some(Message::Pong(n)),
            _ => None,
        };
        if let Some(a) = answer
            && wire::write_message(&mut send, &a).await.is_err()
        {
            break;
        }
    }
    // The reader may see the end before the close reason is set.
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.conn.closed()).await;
    ended(&conn)
}
