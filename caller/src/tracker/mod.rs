//! Trackers: the scopes that collect pendings (groups and managers).

use std::fmt;

use crate::error::Error;

/// How a [`PendingGroup`](crate::PendingGroup) ended when it did not end quietly.
#[derive(Clone, Debug)]
pub struct GroupError {
    /// Every failure (panic or `Err`) of a member, in the order they happened.
    pub failures: Vec<Error>,
    /// The cancel message, when the group ended cancelled.
    pub cancelled: Option<String>,
    /// Members still running when the group gave up waiting for them.
    pub abandoned: Vec<String>,
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failures.is_empty() {
            write!(f, "group cancelled")?;
            if let Some(m) = self.cancelled.as_deref().filter(|m| !m.is_empty()) {
                write!(f, ": {m}")?;
            }
        } else {
            write!(f, "{} member(s) of the group failed", self.failures.len())?;
            for e in &self.failures {
                write!(f, "\n  - {e}")?;
            }
        }
        if !self.abandoned.is_empty() {
            write!(
                f,
                "\n  still running when the group gave up waiting: {}",
                self.abandoned.join(", ")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for GroupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.failures
            .first()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
