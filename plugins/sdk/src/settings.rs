//! Plugin settings: a JSON object (empty text means the defaults), parsed, validated with the
//! field named on error, and written back normalised by `configure`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::FieldError;

/// A plugin's settings type. Implement [`validate`](Self::validate) for the checks serde cannot
/// express; `configure` is then `Settings::normalise(settings)` and every decision starts with
/// `Settings::parse(settings)?`.
pub trait PluginSettings: Default + Serialize + DeserializeOwned {
    /// Checks the parsed settings; the error names the offending field.
    fn validate(&self) -> Result<(), FieldError> {
        Ok(())
    }

    /// Parses and validates settings JSON (empty or blank text means the defaults).
    fn parse(json: &str) -> Result<Self, FieldError> {
        let settings: Self = if json.trim().is_empty() {
            Self::default()
        } else {
            serde_json::from_str(json).map_err(|e| FieldError::new("settings", e.to_string()))?
        };
        settings.validate()?;
        Ok(settings)
    }

    /// What `configure` answers: the settings parsed, validated and serialised again, so the
    /// host passes every later call one canonical form.
    fn normalise(json: &str) -> Result<String, FieldError> {
        let settings = Self::parse(json)?;
        serde_json::to_string(&settings).map_err(|e| FieldError::new("settings", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
    struct Example {
        max_items: u32,
    }

    impl PluginSettings for Example {
        fn validate(&self) -> Result<(), FieldError> {
            if self.max_items > 10 {
                return Err(FieldError::new("maxItems", "at most 10"));
            }
            Ok(())
        }
    }

    #[test]
    fn empty_means_defaults_and_normalises_to_the_full_form() {
        assert_eq!(Example::parse("  "), Ok(Example::default()));
        assert_eq!(Example::normalise(""), Ok(r#"{"maxItems":0}"#.to_owned()));
    }

    #[test]
    fn errors_name_the_field() {
        let bad = Example::parse(r#"{"maxItems": 11}"#).expect_err("too many");
        assert_eq!(bad.field, "maxItems");
        let unknown = Example::parse(r#"{"other": 1}"#).expect_err("unknown field");
        assert_eq!(unknown.field, "settings");
        assert!(unknown.reason.contains("other"), "{}", unknown.reason);
    }
}
