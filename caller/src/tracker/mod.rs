//! Trackers: the scopes that collect pendings (groups and managers), and the dump of
//! the live tree.

mod group;
mod manager;

pub(crate) use group::GroupInner;
pub use group::{GroupBuilder, GroupMode, PendingGroup};
pub use manager::{ManagerGuard, PendingManager};

use std::fmt;
use std::sync::{Arc, OnceLock, Weak};

use crate::error::Error;
use crate::sync::{lock, Mutex};

type LiveGroups = Mutex<Vec<(u64, Weak<GroupInner>)>>;

fn live_groups() -> &'static LiveGroups {
    static GROUPS: OnceLock<LiveGroups> = OnceLock::new();
    GROUPS.get_or_init(Default::default)
}

fn registry_insert(g: &Arc<GroupInner>) {
    use crate::context::Tracker;
    lock(live_groups()).push((g.id(), Arc::downgrade(g)));
}

fn registry_remove(id: u64) {
    lock(live_groups()).retain(|(i, w)| *i != id && w.strong_count() > 0);
}

/// A readable dump of the live tree: every caller, the groups entered on its thread, and
/// their unfinished members with metadata and cancel messages. For debugging.
///
/// ```
/// let text = caller::dump();
/// assert!(text.starts_with("callers:"));
/// ```
pub fn dump() -> String {
    use std::fmt::Write;
    let groups: Vec<Arc<GroupInner>> = lock(live_groups())
        .iter()
        .filter_map(|(_, w)| w.upgrade())
        .collect();
    let mut out = String::from("callers:\n");
    for c in crate::Caller::all_callers(false) {
        let _ = writeln!(
            out,
            "  caller '{}' id={} state={:?} protected={} children={}",
            c.name(),
            c.id(),
            c.state(),
            c.protected(),
            c.children().len()
        );
        for g in groups.iter().filter(|g| g.caller_id() == Some(c.id())) {
            g.describe(&mut out, "    ");
        }
    }
    let orphans: Vec<_> = groups.iter().filter(|g| g.caller_id().is_none()).collect();
    if !orphans.is_empty() {
        out.push_str("groups entered outside any caller:\n");
        for g in orphans {
            g.describe(&mut out, "  ");
        }
    }
    out
}

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
