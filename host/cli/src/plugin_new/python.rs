//! The Python starters: componentize-py over the project's wit/.

use super::{Hook, Starter};

pub(super) const STARTER: Starter = Starter {
    language: "Python",
    toolchain: "Needs `pip install componentize-py==0.25.1` (or `$VDI_COMPONENTIZE_PY`); \
                `vdi plugin build` runs `componentize-py -d wit -w <hook> componentize app -o out/<name>.wasm`.",
    sources: "| `app.py` | the {{role}} |\n",
    files,
};

fn files(hook: Hook) -> Vec<(&'static str, &'static str)> {
    let app = match hook {
        Hook::Admission => include_str!("../../templates/python/admission/app.py"),
        Hook::Scheduler => include_str!("../../templates/python/scheduler/app.py"),
        Hook::Template => include_str!("../../templates/python/template/app.py"),
    };
    vec![("app.py", app)]
}
