//! Config errors: every problem found in one pass, each with the key path it concerns.
//!
//! A [`ConfigError`] is never a single "first" failure: loading collects structural problems
//! (unknown keys, wrong types), semantic ones (bad GUIDs, conflicting options) and file ones
//! (unreadable credential files) and reports them together, one per line.

use std::fmt;

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where: `tenants[0].tenant_id`, `scan.interval`, `severity_overrides."user.nope"`;
    /// empty for problems with the file as a whole (unreadable, not TOML).
    pub key_path: String,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl ConfigProblem {
    /// A problem at `key_path`.
    pub fn new(key_path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key_path: key_path.into(),
            message: message.into(),
        }
    }

    /// True when this problem concerns `path` itself or something inside it.
    pub(crate) fn is_at_or_below(&self, path: &str) -> bool {
        match self.key_path.strip_prefix(path) {
            Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
            None => false,
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key_path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key_path, self.message)
        }
    }
}

/// The configuration is not usable; holds every problem found (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// All problems, grouped by section (in the order of `config/example.toml`) and array
    /// index; within one entry, values that could not be read come before validation problems.
    pub problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// An error with one problem about the file as a whole.
    pub fn whole_file(message: impl Into<String>) -> Self {
        Self {
            problems: vec![ConfigProblem::new("", message)],
        }
    }
}

/// One problem per line, no trailing newline.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Collects problems while walking or validating; order of pushes is the report order.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<ConfigProblem>);

impl Problems {
    /// Records a problem.
    pub(crate) fn push(&mut self, key_path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem::new(key_path, message));
    }

    /// Number of problems so far.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Appends the problems of another collector.
    pub(crate) fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    /// The collected problems.
    pub(crate) fn into_vec(self) -> Vec<ConfigProblem> {
        self.0
    }
}
