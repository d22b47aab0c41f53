//! The pieces of the `vdi` command other crates' tests use: the whole platform assembled on the
//! embedded control plane (what `vdi up` runs), and the in-process admission hook that puts the
//! operator's plugin chain in front of `VDISession` writes there.

pub mod hook;
pub mod platform;
