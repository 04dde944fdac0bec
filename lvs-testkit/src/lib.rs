//! The lab: network namespaces, a bridge, directors, real servers, clients.
