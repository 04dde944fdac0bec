//! Writing single connection and template entries: what connection sync
//! does on a backup director, and what tests use to age entries.

use lvs_common::{map_names as names, Conn, FlowKey, Persist, PersistKey};

use super::{map_err, Datapath, Result};

impl Datapath {
    pub fn insert_conn(&mut self, key: FlowKey, conn: Conn) -> Result<()> {
        self.state
            .maps
            .conns
            .insert(key, conn, 0)
            .map_err(map_err(names::CONNS))
    }

    pub fn conn(&self, key: &FlowKey) -> Option<Conn> {
        self.state.maps.conns.get(key, 0).ok()
    }

    /// Marks every connection as seen now. A re-adopted data path may have
    /// forwarded established flows from its flow cache while no agent bumped
    /// the tick, leaving their entries' timestamps old: without this, the
    /// new agent's first expiry pass would delete live connections.
    pub fn refresh_conns(&mut self) -> Result<usize> {
        let now = super::read::monotonic_ns();
        let keys: Vec<FlowKey> = self
            .state
            .maps
            .conns
            .keys()
            .filter_map(|k| k.ok())
            .collect();
        let mut n = 0;
        for key in keys {
            if let Ok(mut c) = self.state.maps.conns.get(&key, 0) {
                c.last_seen_ns = now;
                if self.state.maps.conns.insert(key, c, 0).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    pub fn insert_template(&mut self, key: PersistKey, value: Persist) -> Result<()> {
        self.state
            .maps
            .persist
            .insert(key, value, 0)
            .map_err(map_err(names::PERSIST))
    }

    pub fn template(&self, key: &PersistKey) -> Option<Persist> {
        self.state.maps.persist.get(key, 0).ok()
    }
}
