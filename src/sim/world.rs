//! Where simulated nodes are and how long a message takes between two of them.
//!
//! `world`: six regions with the share of nodes in each and a one-way latency between each
//! pair. The figures are of the magnitude the simulator SimBlock publishes for the Bitcoin
//! network of 2019, as we recall and round them; they were not measured here, and a run's
//! propagation times are only as good as they are. `lan`: every node in one room, 1 ms apart.

/// A region of the world.
pub type Region = usize;

/// Per mille of nodes in each region, in table order: North America, Europe, South America,
/// Asia Pacific, Japan, Australia.
const SHARE: [u32; 6] = [332, 500, 9, 118, 22, 19];

/// One-way latency between regions, in milliseconds.
const WORLD_MS: [[u64; 6]; 6] = [
    [32, 124, 184, 198, 151, 189],
    [124, 11, 227, 237, 252, 294],
    [184, 227, 88, 325, 301, 322],
    [198, 237, 325, 85, 58, 198],
    [151, 252, 301, 58, 12, 126],
    [189, 294, 322, 198, 126, 16],
];

/// A region's name.
pub fn region_name(r: Region) -> &'static str {
    match r {
        0 => "North America",
        1 => "Europe",
        2 => "South America",
        3 => "Asia Pacific",
        4 => "Japan",
        5 => "Australia",
        _ => "elsewhere",
    }
}

/// How many regions there are.
pub const REGIONS: usize = 6;

/// The latency model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    /// Six regions of the world.
    World,
    /// One local network.
    Lan,
}

impl Latency {
    /// A region for a new node.
    pub fn draw(self, rng: &mut fastrand::Rng) -> Region {
        match self {
            Latency::Lan => 0,
            Latency::World => {
                let mut x = rng.u32(..SHARE.iter().sum::<u32>());
                for (r, s) in SHARE.iter().enumerate() {
                    if x < *s {
                        return r;
                    }
                    x -= s;
                }
                0
            }
        }
    }

    /// One-way latency from `a` to `b`, in microseconds.
    pub fn one_way_us(self, a: Region, b: Region) -> u64 {
        match self {
            Latency::Lan => 1_000,
            Latency::World => WORLD_MS[a.min(5)][b.min(5)] * 1_000,
        }
    }
}

impl std::str::FromStr for Latency {
    type Err = String;
    fn from_str(s: &str) -> Result<Latency, String> {
        match s {
            "world" => Ok(Latency::World),
            "lan" => Ok(Latency::Lan),
            other => Err(format!(
                "unknown latency model {other:?} (expected world or lan)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_symmetric_and_regions_follow_their_shares() {
        for (a, row) in WORLD_MS.iter().enumerate() {
            for (b, ms) in row.iter().enumerate() {
                assert_eq!(*ms, WORLD_MS[b][a]);
            }
        }
        let mut rng = fastrand::Rng::with_seed(1);
        let mut count = [0u32; 6];
        for _ in 0..100_000 {
            count[Latency::World.draw(&mut rng)] += 1;
        }
        // Europe holds about half the nodes, South America about 1 %.
        assert!((48_000..52_000).contains(&count[1]), "{count:?}");
        assert!((700..1_100).contains(&count[2]), "{count:?}");
        assert_eq!(Latency::Lan.one_way_us(0, 0), 1_000);
        assert!("moon".parse::<Latency>().is_err());
    }
}
