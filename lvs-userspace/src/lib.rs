//! The userspace half of lvs-xdp: the datapath API (load or re-adopt the
//! pinned XDP program and maps, apply a desired state by diff, read counters
//! and connections) and the schedulers it precomputes.

pub mod datapath;
pub mod sched;
