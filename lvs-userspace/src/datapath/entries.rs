//! Writing single connection and template entries: what connection sync
//! does on a backup director, and what tests use to age entries.

use lvs_common::{map_names as names, Conn, FlowKey, FlowKey6, Persist, PersistKey, PersistKey6};

use super::{map_err, Datapath, Result};

impl Datapath {
    pub fn insert_conn(&mut self, key: FlowKey, conn: Conn) -> Result<()> {
        self.state
            .maps
            .conns
            .insert(key, conn, 0)
            .map_err(map_err(names::CONNS))
    }

    /// The flow's entry: established (`conns`), else half-open.
    pub fn conn(&self, key: &FlowKey) -> Option<Conn> {
        let maps = &self.state.maps;
        maps.conns
            .get(key, 0)
            .or_else(|_| maps.half_open.get(key, 0))
            .ok()
    }

    /// Whether the flow is established (in `conns`, not half-open).
    pub fn is_established(&self, key: &FlowKey) -> bool {
        self.state.maps.conns.get(key, 0).is_ok()
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

    /// An IPv6 flow's entry: established (`conns6`), else half-open.
    pub fn conn6(&self, key: &FlowKey6) -> Option<Conn> {
        let maps = &self.state.maps;
        maps.conns6
            .get(key, 0)
            .or_else(|_| maps.half_open6.get(key, 0))
            .ok()
    }

    /// Whether the IPv6 flow is established (in `conns6`).
    pub fn is_established6(&self, key: &FlowKey6) -> bool {
        self.state.maps.conns6.get(key, 0).is_ok()
    }

    pub fn insert_conn6(&mut self, key: FlowKey6, conn: Conn) -> Result<()> {
        self.state
            .maps
            .conns6
            .insert(key, conn, 0)
            .map_err(map_err(names::CONNS6))
    }

    pub fn insert_template6(&mut self, key: PersistKey6, value: Persist) -> Result<()> {
        self.state
            .maps
            .persist6
            .insert(key, value, 0)
            .map_err(map_err(names::PERSIST6))
    }

    pub fn template6(&self, key: &PersistKey6) -> Option<Persist> {
        self.state.maps.persist6.get(key, 0).ok()
    }
}
