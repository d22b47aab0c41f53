//! The JavaScript starters: componentize-qjs (QuickJS) over the project's wit/.

use super::{Hook, Starter};

pub(super) const STARTER: Starter = Starter {
    language: "JavaScript",
    toolchain: "Needs Node.js and `npm install` here (componentize-qjs); `vdi plugin build` runs \
                `componentize-qjs --wit wit --js app.js -n <hook> --sync -o out/<name>.wasm`.",
    sources: "| `package.json` | componentize-qjs, pinned |\n| `app.js` | the {{role}} |\n",
    files,
};

fn files(hook: Hook) -> Vec<(&'static str, &'static str)> {
    match hook {
        Hook::Admission => vec![
            (
                "package.json",
                include_str!("../../templates/js/admission/package.json"),
            ),
            (
                "app.js",
                include_str!("../../templates/js/admission/app.js"),
            ),
        ],
        Hook::Scheduler => vec![
            (
                "package.json",
                include_str!("../../templates/js/scheduler/package.json"),
            ),
            (
                "app.js",
                include_str!("../../templates/js/scheduler/app.js"),
            ),
        ],
        Hook::Template => vec![
            (
                "package.json",
                include_str!("../../templates/js/template/package.json"),
            ),
            ("app.js", include_str!("../../templates/js/template/app.js")),
        ],
    }
}
