use crate::ConfigError;

/// Checks a plain SQL identifier: ASCII letters, digits and `_`, not starting with a digit.
pub(crate) fn identifier(name: String) -> Result<String, ConfigError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63;
    if valid {
        Ok(name)
    } else {
        Err(ConfigError::InvalidIdentifier { name })
    }
}

/// The quoted names of a store's tables, all derived from the reports table's name (the
/// same in every SQL store).
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    /// The reports table's name as given (validated, unquoted).
    pub(crate) name: String,
    pub(crate) reports: String,
    pub(crate) violations: String,
    pub(crate) violation_hours: String,
    pub(crate) violation_days: String,
    pub(crate) hours: String,
    pub(crate) claims: String,
}

impl Tables {
    pub(crate) fn new(name: &str) -> Self {
        let quote = |suffix: &str| format!("\"{name}{suffix}\"");
        Self {
            name: name.to_owned(),
            reports: quote(""),
            violations: quote("_violations"),
            violation_hours: quote("_violation_hours"),
            violation_days: quote("_violation_days"),
            hours: quote("_hours"),
            claims: quote("_claims"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for (name, ok) in [
            ("csp_reports", true),
            ("_x1", true),
            ("CspReports", true),
            ("", false),
            ("1abc", false),
            ("a-b", false),
            ("a b", false),
            ("a\"b", false),
            ("reports;drop", false),
            ("é", false),
        ] {
            assert_eq!(identifier(name.to_owned()).is_ok(), ok, "{name:?}");
        }
        assert!(identifier("a".repeat(63)).is_ok());
        assert!(identifier("a".repeat(64)).is_err());
    }
}
