//! `bindgen!` output for the three hook worlds, kept private to this crate.
//!
//! The `types` and `host` interfaces are generated once (with `admission`) and reused by the
//! other worlds, so one set of Rust types serves every hook. The types derive serde in the
//! default representation, which is the format of the test vectors in `plugins/testdata/`.

#![allow(missing_docs, reason = "generated bindings")]

pub(crate) mod admission {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "admission",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

pub(crate) mod scheduler {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "scheduler",
        with: {
            "vdi:plugin/types": crate::bindings::admission::vdi::plugin::types,
            "vdi:plugin/host": crate::bindings::admission::vdi::plugin::host,
        },
    });
}

pub(crate) mod template {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "template",
        with: {
            "vdi:plugin/types": crate::bindings::admission::vdi::plugin::types,
            "vdi:plugin/host": crate::bindings::admission::vdi::plugin::host,
        },
    });
}

pub(crate) use admission::vdi::plugin::{host, types};
