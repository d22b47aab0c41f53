//! The Rust starters: a crate on the vdi-plugin-sdk (cargo, wasm32-wasip2).

use super::{Hook, Starter};

pub(super) const STARTER: Starter = Starter {
    language: "Rust",
    toolchain: "Needs Rust with `rustup target add wasm32-wasip2`; `vdi plugin build` runs \
                `cargo build --release --target wasm32-wasip2` and copies the component to `out/`.",
    sources: "| `Cargo.toml` | the crate; `vdi-plugin-sdk` by path (`vdi plugin new --sdk-path`) |\n\
              | `src/lib.rs` | the {{role}} |\n",
    files,
};

fn files(hook: Hook) -> Vec<(&'static str, &'static str)> {
    match hook {
        Hook::Admission => vec![
            (
                "Cargo.toml",
                include_str!("../../templates/rust/admission/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../templates/rust/admission/src/lib.rs"),
            ),
        ],
        Hook::Scheduler => vec![
            (
                "Cargo.toml",
                include_str!("../../templates/rust/scheduler/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../templates/rust/scheduler/src/lib.rs"),
            ),
        ],
        Hook::Template => vec![
            (
                "Cargo.toml",
                include_str!("../../templates/rust/template/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../templates/rust/template/src/lib.rs"),
            ),
        ],
    }
}
