//! Writing single connection and template entries: what connection sync
//! does on a backup director, and what tests use to age entries. Generic
//! over the family: `K` is `FlowKey` or `FlowKey6`, templates their
//! `PersistKey`/`PersistKey6`.

use lvs_common::{Conn, FlowKey, FlowKey6, Persist, PersistKey, PersistKey6};

use super::read::Family;
use super::{map_err, Datapath, Result};

/// A template key, and the family whose tables hold it.
pub trait TemplateKey: aya::Pod + Copy {
    type Flow: Family<Tmpl = Self>;
}

impl TemplateKey for PersistKey {
    type Flow = FlowKey;
}

impl TemplateKey for PersistKey6 {
    type Flow = FlowKey6;
}

impl Datapath {
    /// Writes an established connection entry (`conns`, `conns6`).
    pub fn insert_conn<K: Family>(&mut self, key: K, conn: Conn) -> Result<()> {
        let (map, name) = K::flow_table_mut(&mut self.state.maps, false);
        map.insert(key, conn, 0).map_err(map_err(name))
    }

    /// The flow's entry: established, else half-open.
    pub fn conn<K: Family>(&self, key: &K) -> Option<Conn> {
        let maps = &self.state.maps;
        let (conns, _) = K::flow_table(maps, false);
        let (half_open, _) = K::flow_table(maps, true);
        conns.get(key, 0).or_else(|_| half_open.get(key, 0)).ok()
    }

    /// Whether the flow is established (not half-open).
    pub fn is_established<K: Family>(&self, key: &K) -> bool {
        K::flow_table(&self.state.maps, false).0.get(key, 0).is_ok()
    }

    /// Writes a persistence template (`persist`, `persist6`).
    pub fn insert_template<T: TemplateKey>(&mut self, key: T, value: Persist) -> Result<()> {
        let (map, name) = T::Flow::template_table_mut(&mut self.state.maps, false);
        map.insert(key, value, 0).map_err(map_err(name))
    }

    pub fn template<T: TemplateKey>(&self, key: &T) -> Option<Persist> {
        let (map, _) = T::Flow::template_table(&self.state.maps, false);
        map.get(key, 0).ok()
    }
}
