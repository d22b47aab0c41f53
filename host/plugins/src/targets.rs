//! Cost targets of a sandboxed decision against the same logic linked natively (issue 16):
//! which language a component was written in, and how many times the native decision a fresh
//! instance may cost for that language and hook.
//!
//! The language is read from markers the toolchains leave in the component, not from its
//! `producers` section: release builds of Rust guests strip it, and componentize-qjs and
//! componentize-py embed runtimes that carry Rust's.

/// The language a component's decision logic runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Compiled Rust (wit-bindgen-rust), no interpreter.
    Rust,
    /// JavaScript on QuickJS (componentize-qjs) or StarlingMonkey (componentize-js).
    JavaScript,
    /// Python on CPython (componentize-py).
    Python,
    /// Anything else (C, hand-written, unknown).
    Other,
}

impl Language {
    /// Detects the language from a component's bytes: interpreters first (their runtimes are
    /// built with Rust and C), then a C compiler's producers entry, then Rust's bindings.
    pub fn detect(component: &[u8]) -> Self {
        let has = |marker: &[u8]| component.windows(marker.len()).any(|w| w == marker);
        if has(b"componentize_py_runtime") {
            Self::Python
        } else if has(b"componentize_qjs") || has(b"StarlingMonkey") {
            Self::JavaScript
        } else if has(b"clang") {
            Self::Other
        } else if has(b"wit-bindgen-rust") {
            Self::Rust
        } else {
            Self::Other
        }
    }

    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::JavaScript => "javascript",
            Self::Python => "python",
            Self::Other => "other",
        }
    }
}

/// The most a fresh-instance decision may cost, as a multiple of the native decision's p50.
/// Only admission has targets (issue 16 item 4); scheduling and rendering report their ratio
/// without one.
pub fn ratio_target(hook: crate::Hook, language: Language) -> Option<f64> {
    match (hook, language) {
        (crate::Hook::Admission, Language::Rust) => Some(10.0),
        (crate::Hook::Admission, Language::JavaScript) => Some(100.0),
        (crate::Hook::Admission, Language::Python) => Some(1_000.0),
        _ => None,
    }
}

/// `p50 28.1x  target ≤ 10x  ✘`, or the ratio alone when there is no target.
pub fn ratio_line(ratio: f64, target: Option<f64>) -> String {
    match target {
        Some(t) => format!(
            "p50 {ratio:.1}x  target ≤ {t}x  {}",
            if ratio <= t { "✔" } else { "✘" }
        ),
        None => format!("p50 {ratio:.1}x  no target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hook;

    #[test]
    fn interpreters_win_over_the_rust_runtime_they_embed() {
        let py = b"..wit-bindgen-rust..libcomponentize_py_runtime.so..";
        assert_eq!(Language::detect(py), Language::Python);
        let js = b"..wit-bindgen-rust..componentize_qjs_runtime.wasm..";
        assert_eq!(Language::detect(js), Language::JavaScript);
        assert_eq!(
            Language::detect(b"processed-by wit-bindgen-rust 0.45"),
            Language::Rust
        );
        assert_eq!(
            Language::detect(b"language C99 processed-by Debian clang"),
            Language::Other
        );
        assert_eq!(Language::detect(b"\0asm"), Language::Other);
    }

    #[test]
    fn targets_follow_the_issue() {
        assert_eq!(ratio_target(Hook::Admission, Language::Rust), Some(10.0));
        assert_eq!(
            ratio_target(Hook::Admission, Language::JavaScript),
            Some(100.0)
        );
        assert_eq!(
            ratio_target(Hook::Admission, Language::Python),
            Some(1_000.0)
        );
        assert_eq!(ratio_target(Hook::Admission, Language::Other), None);
        assert_eq!(ratio_target(Hook::Scheduler, Language::Rust), None);
        assert_eq!(ratio_target(Hook::Template, Language::Rust), None);
    }

    #[test]
    fn the_line_says_whether_the_target_is_met() {
        assert_eq!(ratio_line(28.14, Some(10.0)), "p50 28.1x  target ≤ 10x  ✘");
        assert_eq!(ratio_line(9.96, Some(10.0)), "p50 10.0x  target ≤ 10x  ✔");
        assert_eq!(
            ratio_line(850.0, Some(1_000.0)),
            "p50 850.0x  target ≤ 1000x  ✔"
        );
        assert_eq!(ratio_line(3.4, None), "p50 3.4x  no target");
    }
}
