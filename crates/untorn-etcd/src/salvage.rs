//! etcd salvage (see below).
