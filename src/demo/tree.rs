//! The recent block tree of the whole demo network, as plain data: which blocks exist near the
//! tips, on which branch (lane) each sits, where a branch forks off, which nodes have each
//! block, and where a node reorganised. Built from [`TreeInput`] with no I/O, so tests feed it
//! fixed data.

use crate::core::hash::BlockHash;
use std::collections::{HashMap, HashSet};

/// Whether a node has a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Have {
    /// On its active chain.
    Active,
    /// Stored, on a side branch.
    Side,
    Missing,
    /// The node is stopped.
    Down,
}

/// One block as the observers saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeBlock {
    pub hash: BlockHash,
    pub height: u64,
    pub prev: BlockHash,
    /// The demo node that mined it, when known.
    pub miner: Option<usize>,
    /// Per node.
    pub have: Vec<Have>,
}

/// What the tree is built from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeInput {
    pub blocks: Vec<TreeBlock>,
    /// Each node's tip (None: stopped).
    pub tips: Vec<Option<BlockHash>>,
    /// Recent reorganisations: (node, depth, new tip).
    pub reorgs: Vec<(usize, usize, BlockHash)>,
}

/// One block in the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeCell {
    pub hash: BlockHash,
    pub have: Vec<Have>,
    pub miner: Option<usize>,
    /// Reorganisations that ended on this block: (node, depth).
    pub reorgs: Vec<(usize, usize)>,
    /// Tip of these nodes.
    pub tip_of: Vec<usize>,
}

/// One height: a cell per lane, and the lanes that fork off from lane 0's block here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeRow {
    pub height: u64,
    pub cells: Vec<Option<TreeCell>>,
    /// Lanes whose lowest block's parent is the block of some other lane at this height:
    /// (lane that forks, lane it forks from).
    pub forks: Vec<(usize, usize)>,
}

/// The view: newest height first, lane 0 the best branch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeView {
    pub nodes: usize,
    pub lanes: usize,
    pub rows: Vec<TreeRow>,
    /// Branches left out for want of room.
    pub hidden_lanes: usize,
}

impl TreeView {
    /// Lay out the last `max_rows` heights of `input` on at most `max_lanes` lanes.
    pub fn build(input: &TreeInput, max_rows: usize, max_lanes: usize) -> TreeView {
        let nodes = input.tips.len();
        let by_hash: HashMap<BlockHash, &TreeBlock> =
            input.blocks.iter().map(|b| (b.hash, b)).collect();
        let Some(top) = input.blocks.iter().map(|b| b.height).max() else {
            return TreeView {
                nodes,
                ..TreeView::default()
            };
        };
        let floor = top.saturating_sub(max_rows.saturating_sub(1) as u64);
        let in_view = |b: &TreeBlock| b.height >= floor;
        let parents: HashSet<BlockHash> = input
            .blocks
            .iter()
            .filter(|b| in_view(b))
            .map(|b| b.prev)
            .collect();
        // Branch tips: blocks in view that no block in view builds on.
        let mut tips: Vec<&TreeBlock> = input
            .blocks
            .iter()
            .filter(|b| in_view(b) && !parents.contains(&b.hash))
            .collect();
        let holders = |b: &TreeBlock| b.have.iter().filter(|h| **h == Have::Active).count();
        // Best first: highest, then held by most nodes, then by hash (deterministic).
        tips.sort_by(|a, b| {
            b.height
                .cmp(&a.height)
                .then(holders(b).cmp(&holders(a)))
                .then(a.hash.cmp(&b.hash))
        });
        let mut lane_of: HashMap<BlockHash, usize> = HashMap::new();
        let mut fork_points: Vec<(BlockHash, usize)> = Vec::new();
        let row_of = |h: u64| (top - h) as usize;
        // Which rows of each lane are taken: by a block, a fork's `╯`, or a connector passing.
        let mut taken: Vec<Vec<bool>> = Vec::new();
        let rows_n = row_of(floor) + 1;
        let mut hidden = 0;
        for tip in tips {
            // The branch down to the block it forks from (or out of view).
            let mut blocks = Vec::new();
            let mut from = None;
            let mut cur = Some(tip);
            while let Some(b) = cur {
                // A branch in view has at most a block a row (a cycle of `prev`s in bad
                // input would otherwise never end).
                if !in_view(b) || blocks.len() == rows_n {
                    break;
                }
                if let Some(&l) = lane_of.get(&b.hash) {
                    from = Some((b, l));
                    break;
                }
                blocks.push(b);
                cur = by_hash.get(&b.prev).copied();
            }
            let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
                continue;
            };
            // Rows it needs in its lane, top to bottom: its blocks and its fork row.
            let top_row = row_of(first.height);
            let bottom_row = from.map_or(row_of(last.height), |(b, _)| row_of(b.height));
            let free =
                |lane: usize, taken: &Vec<Vec<bool>>, rows: std::ops::RangeInclusive<usize>| {
                    taken.get(lane).is_none_or(|t| rows.clone().all(|r| !t[r]))
                };
            // The leftmost lane right of the one it forks from that is free over those rows,
            // with the lanes between free at the fork row (the connector passes there): a
            // lane is used again once its branch is out of the way.
            let lane = match from {
                None if lane_of.is_empty() && max_lanes > 0 => Some(0),
                None => (1..max_lanes).find(|&l| free(l, &taken, top_row..=bottom_row)),
                Some((_, f)) => (f + 1..max_lanes).find(|&l| {
                    free(l, &taken, top_row..=bottom_row)
                        && (f + 1..l).all(|m| free(m, &taken, bottom_row..=bottom_row))
                }),
            };
            let Some(lane) = lane else {
                hidden += 1;
                continue;
            };
            while taken.len() <= lane {
                taken.push(vec![false; rows_n]);
            }
            taken[lane][top_row..=bottom_row].fill(true);
            if let Some((b, f)) = from {
                for t in &mut taken[f + 1..lane] {
                    t[bottom_row] = true;
                }
                fork_points.push((b.hash, lane));
            }
            for b in blocks {
                lane_of.insert(b.hash, lane);
            }
        }
        let lanes = taken.len();
        let mut rows: Vec<TreeRow> = (floor..=top)
            .rev()
            .map(|height| TreeRow {
                height,
                cells: vec![None; lanes],
                forks: Vec::new(),
            })
            .collect();
        for b in input.blocks.iter().filter(|b| in_view(b)) {
            let Some(&lane) = lane_of.get(&b.hash) else {
                continue;
            };
            let row = (top - b.height) as usize;
            let reorgs = input
                .reorgs
                .iter()
                .filter(|(_, _, t)| *t == b.hash)
                .map(|(n, d, _)| (*n, *d))
                .collect();
            let tip_of = input
                .tips
                .iter()
                .enumerate()
                .filter(|(_, t)| **t == Some(b.hash))
                .map(|(i, _)| i)
                .collect();
            if let Some(r) = rows.get_mut(row) {
                r.cells[lane] = Some(TreeCell {
                    hash: b.hash,
                    have: b.have.clone(),
                    miner: b.miner,
                    reorgs,
                    tip_of,
                });
            }
        }
        for (hash, lane) in fork_points {
            if let (Some(b), Some(&from)) = (by_hash.get(&hash), lane_of.get(&hash))
                && let Some(r) = rows.get_mut((top - b.height) as usize)
            {
                r.forks.push((lane, from));
            }
        }
        TreeView {
            nodes,
            lanes,
            rows,
            hidden_lanes: hidden,
        }
    }
}
