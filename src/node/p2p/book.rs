//! The address book and the bans: where peers may be dialed, when each may be tried again
//! (exponential backoff after failed dials), who is banned and until when. I/O-free: times are
//! Unix seconds the caller gives, and the records are loaded from and saved to whatever
//! [`RecordStore`] the caller has (the node's store; memory in a simulation).

use super::BanInfo;
use crate::net::identity::{NodeId, PeerAddr};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

/// Addresses kept in the book.
pub const MAX_BOOK: usize = 1000;
/// Longest reconnection backoff.
pub const MAX_BACKOFF_SECS: u64 = 300;
/// For this long after a ban, inbound connections from the banned peer's IP address are
/// refused unless they come from a node id we already know (so a banned peer cannot come
/// straight back under a new identity).
pub const IP_BAN_SECS: u64 = 600;
/// Node ids remembered as having completed a connection.
const MAX_SEEN: usize = MAX_BOOK * 10;

/// Address book entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookEntry {
    pub addr: SocketAddr,
    pub id: Option<NodeId>,
    pub failures: u32,
    /// Unix seconds before which it is not dialed again.
    pub next_try: u64,
    /// Given with --connect: always retried.
    pub pinned: bool,
}

/// What the book keeps across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    pub book: Vec<BookEntry>,
    pub bans: Vec<BanInfo>,
}

/// Where the book's records live.
pub trait RecordStore: Send {
    fn load(&self) -> Result<Records, String>;
    /// Replace what is saved, durably.
    fn save(&self, records: &Records) -> Result<(), String>;
}

/// Records kept in memory (a simulated node's, or a test's).
#[derive(Clone, Default)]
pub struct MemoryRecords(pub std::sync::Arc<std::sync::Mutex<Records>>);

impl RecordStore for MemoryRecords {
    fn load(&self) -> Result<Records, String> {
        self.0
            .lock()
            .map(|r| r.clone())
            .map_err(|_| "poisoned".to_string())
    }
    fn save(&self, records: &Records) -> Result<(), String> {
        *self.0.lock().map_err(|_| "poisoned".to_string())? = records.clone();
        Ok(())
    }
}

/// Seconds to wait before dialing an address that failed `failures` times in a row.
pub fn backoff_secs(failures: u32) -> u64 {
    (1u64 << failures.min(8)).min(MAX_BACKOFF_SECS)
}

/// What else a dial must not go to.
pub struct DialFilter<'a> {
    /// Our own identity.
    pub own_id: NodeId,
    /// Addresses of connected peers (where they connected from and where they listen).
    pub connected_addrs: &'a HashSet<SocketAddr>,
    pub connected_ids: &'a HashSet<NodeId>,
    /// Addresses being dialed now.
    pub dialing: &'a HashSet<SocketAddr>,
    /// Only these node ids, if set (see `P2pHandle::restrict_peers`).
    pub allowed: Option<&'a HashSet<NodeId>>,
}

/// See the module documentation.
pub struct Book {
    /// Where we listen: never put in the book.
    own_addr: Option<SocketAddr>,
    ban_time: Duration,
    entries: BTreeMap<SocketAddr, BookEntry>,
    bans: Vec<BanInfo>,
    /// Node ids that completed a connection with us (bounded): known, as opposed to fresh
    /// identities, when their address has a ban.
    seen: HashSet<NodeId>,
}

impl Book {
    pub fn new(own_addr: Option<SocketAddr>, ban_time: Duration) -> Book {
        Book {
            own_addr,
            ban_time,
            entries: BTreeMap::new(),
            bans: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// Take saved records: every address may be tried at once; bans over by `now` are left.
    pub fn load(&mut self, records: Records, now: u64) {
        for mut e in records.book {
            if self.entries.len() >= MAX_BOOK {
                break;
            }
            e.next_try = 0;
            self.entries.insert(e.addr, e);
        }
        self.bans
            .extend(records.bans.into_iter().filter(|b| b.until > now));
    }

    /// What to save.
    pub fn records(&self) -> Records {
        Records {
            book: self.entries.values().cloned().collect(),
            bans: self.bans.clone(),
        }
    }

    /// Addresses in the book.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.entries.keys().copied()
    }

    pub fn entry(&self, addr: &SocketAddr) -> Option<&BookEntry> {
        self.entries.get(addr)
    }

    /// Keep `addr` (bound to `id` if given). Not our own address, and nothing new once the
    /// book is full.
    pub fn add(&mut self, addr: SocketAddr, id: Option<NodeId>, pinned: bool) {
        if Some(addr) == self.own_addr {
            return;
        }
        if self.entries.len() >= MAX_BOOK && !self.entries.contains_key(&addr) {
            return;
        }
        let e = self.entries.entry(addr).or_insert(BookEntry {
            addr,
            id,
            failures: 0,
            next_try: 0,
            pinned,
        });
        e.pinned |= pinned;
        if id.is_some() {
            e.id = id;
        }
    }

    /// The user asked to dial `addr` now: its backoff is forgotten.
    pub fn try_now(&mut self, addr: &SocketAddr) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.next_try = 0;
            e.failures = 0;
        }
    }

    /// A dial of `addr` failed at `now`: wait longer before the next.
    pub fn dial_failed(&mut self, addr: &SocketAddr, now: u64) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.failures = e.failures.saturating_add(1);
            e.next_try = now.saturating_add(backoff_secs(e.failures));
        }
    }

    /// We reached `id` at `addr` and it proved its identity there.
    pub fn dial_succeeded(&mut self, addr: SocketAddr, id: NodeId) {
        self.add(addr, Some(id), false);
        if let Some(e) = self.entries.get_mut(&addr) {
            e.failures = 0;
            e.id = Some(id);
        }
    }

    /// `id` completed a connection: it is known from now on.
    pub fn note_seen(&mut self, id: NodeId) {
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
        }
        self.seen.insert(id);
    }

    /// Entries a dial may go to at `now`: due, and not excluded by `not` or a ban.
    fn dialable<'a>(
        &'a self,
        now: u64,
        not: &'a DialFilter<'_>,
    ) -> impl Iterator<Item = &'a BookEntry> + 'a {
        self.entries.values().filter(move |e| {
            e.next_try <= now
                && !not.connected_addrs.contains(&e.addr)
                && !not.dialing.contains(&e.addr)
                && !e
                    .id
                    .is_some_and(|i| not.connected_ids.contains(&i) || i == not.own_id)
                && not
                    .allowed
                    .is_none_or(|a| e.id.is_some_and(|i| a.contains(&i)))
                && !self.bans.iter().any(|b| {
                    b.until > now && (b.addr == Some(e.addr) || (b.id.is_some() && b.id == e.id))
                })
        })
    }

    /// Until the dial says otherwise, `addr` is not tried again for a while.
    fn mark_tried(&mut self, addr: &SocketAddr, now: u64) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.next_try = now.saturating_add(backoff_secs(e.failures));
        }
    }

    /// Up to `room` addresses due for a dial at `now` (pinned first, then fewest failures),
    /// each not tried again before its backoff unless the dial says otherwise.
    pub fn due(&mut self, now: u64, room: usize, not: &DialFilter<'_>) -> Vec<PeerAddr> {
        if room == 0 {
            return Vec::new();
        }
        let mut due: Vec<&BookEntry> = self.dialable(now, not).collect();
        due.sort_by_key(|e| (!e.pinned, e.failures, e.addr));
        let chosen: Vec<PeerAddr> = due
            .into_iter()
            .take(room)
            .map(|e| PeerAddr::new(e.addr, if e.pinned { e.id } else { None }))
            .collect();
        for p in &chosen {
            self.mark_tried(&p.addr, now);
        }
        chosen
    }

    /// The dialable address (as [`Book::due`]) that `order` puts first, for one extra dial;
    /// not tried again before its backoff unless the dial says otherwise.
    pub fn pick<K: Ord>(
        &mut self,
        now: u64,
        not: &DialFilter<'_>,
        order: impl Fn(&BookEntry) -> K,
    ) -> Option<PeerAddr> {
        let chosen = self
            .dialable(now, not)
            .min_by_key(|e| order(e))
            .map(|e| PeerAddr::new(e.addr, if e.pinned { e.id } else { None }))?;
        self.mark_tried(&chosen.addr, now);
        Some(chosen)
    }

    /// The ban that keeps `id` connecting from `addr` out at `now`, if any: a ban of its
    /// identity or of that address, or (for a connection it made to us, from an identity we
    /// have not seen before and that is not `allowed`) a recent ban of another identity from
    /// the same IP address.
    pub fn is_banned(
        &self,
        id: &NodeId,
        addr: &SocketAddr,
        inbound: bool,
        allowed: Option<&HashSet<NodeId>>,
        now: u64,
    ) -> Option<&BanInfo> {
        let fresh = inbound
            && !self.seen.contains(id)
            && !self.entries.values().any(|e| e.id == Some(*id))
            && allowed.is_none_or(|a| !a.contains(id));
        self.bans.iter().find(|b| {
            b.until > now
                && (b.id == Some(*id)
                    || b.addr == Some(*addr)
                    || (fresh
                        && b.addr.is_some_and(|a| a.ip() == addr.ip())
                        && b.until.saturating_sub(self.ban_time.as_secs()) + IP_BAN_SECS > now))
        })
    }

    /// Ban `id` (and the address its connection came from, if any) from `now` on.
    pub fn ban(&mut self, id: NodeId, addr: Option<SocketAddr>, reason: &str, now: u64) {
        // A ban of the same identity is renewed, keeping its address if this one has none.
        let earlier = self
            .bans
            .iter()
            .find(|b| b.id == Some(id))
            .and_then(|b| b.addr);
        let addr = addr.or(earlier);
        self.bans.retain(|b| b.id != Some(id));
        self.bans.push(BanInfo {
            id: Some(id),
            addr,
            reason: reason.to_string(),
            until: now.saturating_add(self.ban_time.as_secs()),
        });
        self.seen.remove(&id);
    }

    /// Lift the bans on a node id (full hex or its short form) or an address; true if any.
    pub fn unban(&mut self, who: &str) -> bool {
        let before = self.bans.len();
        self.bans.retain(|b| {
            let id_match = b
                .id
                .is_some_and(|i| i.to_string() == who || i.short().trim_end_matches('…') == who);
            let addr_match = b.addr.is_some_and(|a| a.to_string() == who);
            !(id_match || addr_match)
        });
        self.bans.len() != before
    }

    /// Forget bans over by `now`; true if any were.
    pub fn expire(&mut self, now: u64) -> bool {
        let before = self.bans.len();
        self.bans.retain(|b| b.until > now);
        self.bans.len() != before
    }

    /// Bans in force at `now`.
    pub fn bans(&self, now: u64) -> Vec<BanInfo> {
        self.bans
            .iter()
            .filter(|b| b.until > now)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId([n; 32])
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    struct Nothing {
        addrs: HashSet<SocketAddr>,
        ids: HashSet<NodeId>,
    }

    impl Nothing {
        fn new() -> Nothing {
            Nothing {
                addrs: HashSet::new(),
                ids: HashSet::new(),
            }
        }
        fn filter(&self) -> DialFilter<'_> {
            DialFilter {
                own_id: id(0),
                connected_addrs: &self.addrs,
                connected_ids: &self.ids,
                dialing: &self.addrs,
                allowed: None,
            }
        }
    }

    #[test]
    fn failed_dials_back_off_exponentially_up_to_a_cap_and_a_success_resets_it() {
        let a = addr("127.0.0.1:9001");
        let none = Nothing::new();
        let mut book = Book::new(None, Duration::from_secs(3600));
        book.add(a, None, false);
        let mut now = 1_000;
        assert_eq!(book.due(now, 8, &none.filter()).len(), 1);
        let mut waits = Vec::new();
        for _ in 0..10 {
            book.dial_failed(&a, now);
            let next = book.entry(&a).unwrap().next_try;
            waits.push(next - now);
            // Not a second before its time, and due at it.
            assert!(book.due(next - 1, 8, &none.filter()).is_empty());
            assert_eq!(book.due(next, 8, &none.filter()).len(), 1);
            now = next;
        }
        assert_eq!(waits, vec![2, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
        assert!(waits.iter().all(|w| *w <= MAX_BACKOFF_SECS));
        book.dial_succeeded(a, id(5));
        assert_eq!(book.entry(&a).unwrap().failures, 0);
        assert_eq!(book.entry(&a).unwrap().id, Some(id(5)));
        // A dial under way is not due again until its backoff, even before it settles.
        let t = book.due(now + 1_000, 8, &none.filter());
        assert_eq!(t.len(), 1);
        assert!(book.due(now + 1_000, 8, &none.filter()).is_empty());
        // Asked for by the user: at once.
        book.try_now(&a);
        assert_eq!(book.due(now + 1_000, 8, &none.filter()).len(), 1);
    }

    #[test]
    fn pinned_addresses_are_dialed_first_and_never_our_own() {
        let own = addr("127.0.0.1:9000");
        let none = Nothing::new();
        let mut book = Book::new(Some(own), Duration::from_secs(3600));
        book.add(own, None, true);
        book.add(addr("127.0.0.1:9003"), None, false);
        book.add(addr("127.0.0.1:9002"), Some(id(2)), true);
        assert_eq!(book.len(), 2);
        let due = book.due(0, 1, &none.filter());
        assert_eq!(
            due,
            vec![PeerAddr::new(addr("127.0.0.1:9002"), Some(id(2)))]
        );
    }

    #[test]
    fn a_ban_lasts_its_time_to_the_second_and_then_expires() {
        let (who, from) = (id(7), addr("127.0.0.1:9007"));
        let mut book = Book::new(None, Duration::from_secs(3600));
        book.ban(who, Some(from), "flooding", 10_000);
        assert!(book.is_banned(&who, &from, false, None, 13_599).is_some());
        // The address too, under any identity.
        assert!(book.is_banned(&id(8), &from, false, None, 13_599).is_some());
        assert!(book.is_banned(&who, &from, false, None, 13_600).is_none());
        assert_eq!(book.bans(13_599).len(), 1);
        assert!(!book.expire(13_599));
        assert!(book.expire(13_600));
        assert!(book.bans(13_600).is_empty());
        // Banned addresses are not dialed while the ban holds.
        let mut book = Book::new(None, Duration::from_secs(3600));
        book.add(from, Some(who), false);
        book.ban(who, Some(from), "flooding", 10_000);
        let none = Nothing::new();
        assert!(book.due(13_599, 8, &none.filter()).is_empty());
        assert_eq!(book.due(13_600, 8, &none.filter()).len(), 1);
    }

    #[test]
    fn a_fresh_identity_from_a_banned_ip_is_refused_for_a_while_a_known_one_is_not() {
        let mut book = Book::new(None, Duration::from_secs(3600));
        let old = id(1);
        book.note_seen(id(2));
        book.ban(old, Some(addr("127.0.0.5:4000")), "invalid block", 0);
        let other_port = addr("127.0.0.5:4001");
        // A new identity from the same IP, inbound: refused until IP_BAN_SECS.
        assert!(
            book.is_banned(&id(3), &other_port, true, None, IP_BAN_SECS - 1)
                .is_some()
        );
        assert!(
            book.is_banned(&id(3), &other_port, true, None, IP_BAN_SECS)
                .is_none()
        );
        // One we know, one we dialed, or one allowed: let in.
        assert!(book.is_banned(&id(2), &other_port, true, None, 1).is_none());
        let allowed: HashSet<NodeId> = [id(3)].into();
        assert!(
            book.is_banned(&id(3), &other_port, true, Some(&allowed), 1)
                .is_none()
        );
        // Outbound: we chose the address, so only the ban on the id or address counts.
        assert!(
            book.is_banned(&id(3), &other_port, false, None, 1)
                .is_none()
        );
    }

    #[test]
    fn a_renewed_ban_without_an_address_keeps_the_one_it_had() {
        let mut book = Book::new(None, Duration::from_secs(3600));
        let from = addr("127.0.0.9:4000");
        book.ban(id(1), Some(from), "invalid block", 100);
        book.ban(id(1), None, "invalid transaction", 200);
        let bans = book.bans(200);
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].addr, Some(from));
        assert_eq!(bans[0].until, 200 + 3600);
        assert!(book.is_banned(&id(9), &from, false, None, 201).is_some());
    }

    #[test]
    fn records_survive_a_round_trip_without_expired_bans_or_backoff() {
        let store = MemoryRecords::default();
        let mut book = Book::new(None, Duration::from_secs(60));
        let a = addr("127.0.0.1:9001");
        book.add(a, Some(id(1)), true);
        book.dial_failed(&a, 100);
        book.ban(id(2), None, "spam", 100);
        book.ban(id(3), None, "spam", 500);
        store.save(&book.records()).unwrap();
        let mut again = Book::new(None, Duration::from_secs(60));
        again.load(store.load().unwrap(), 200);
        assert_eq!(again.entry(&a).unwrap().next_try, 0);
        assert_eq!(again.entry(&a).unwrap().failures, 1);
        assert!(again.entry(&a).unwrap().pinned);
        assert_eq!(
            again
                .bans(200)
                .iter()
                .map(|b| b.id.unwrap())
                .collect::<Vec<_>>(),
            vec![id(3)]
        );
        // Unban by address string and by id.
        assert!(again.unban(&id(3).to_string()));
        assert!(!again.unban(&id(3).to_string()));
    }

    #[test]
    fn the_book_holds_at_most_max_book_addresses() {
        let mut book = Book::new(None, Duration::from_secs(60));
        for i in 0..(MAX_BOOK as u32 + 10) {
            let port = 1000 + (i % 60_000) as u16;
            let ip = std::net::Ipv4Addr::new(127, 0, (i / 60_000) as u8 + 1, 1);
            book.add(SocketAddr::from((ip, port)), None, false);
        }
        assert_eq!(book.len(), MAX_BOOK);
    }
}
