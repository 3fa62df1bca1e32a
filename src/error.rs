//! Errors that callers and tests branch on. Everything else is `anyhow` context at the edges.

use std::fmt;

/// A config value that is out of range or inconsistent, naming its field
/// (`train.batch_size`) and what was expected. Displayed as `field: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl fmt::Display) -> Self {
        ConfigError {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Two things that must agree in size do not: `what` names the second, `expected` is what
/// the first asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    pub what: String,
    pub expected: String,
    pub found: String,
}

impl ShapeError {
    pub fn new(what: impl Into<String>, expected: impl fmt::Debug, found: impl fmt::Debug) -> Self {
        ShapeError {
            what: what.into(),
            expected: format!("{expected:?}"),
            found: format!("{found:?}"),
        }
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.what, self.expected, self.found
        )
    }
}

impl std::error::Error for ShapeError {}
