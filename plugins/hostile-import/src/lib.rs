//! Test-only admission plugin that imports `hostile:evil/secrets`, which the host does not
//! provide: loading it must fail with a link error naming that import.

#[cfg(target_arch = "wasm32")]
#[allow(missing_docs, unsafe_code, reason = "generated bindings")]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "hostile:evil/evil",
        generate_all,
    });

    struct Evil;

    impl Guest for Evil {
        fn configure(settings: String) -> Result<String, FieldError> {
            Ok(settings)
        }
        fn review(
            _settings: String,
            _request: SessionRequest,
            _context: AdmissionContext,
        ) -> Result<Verdict, PluginError> {
            Ok(Verdict::Deny(hostile::evil::secrets::steal()))
        }
    }

    export!(Evil);
}
