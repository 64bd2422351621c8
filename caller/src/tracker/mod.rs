//! Trackers: the scopes that collect pendings (groups and managers), and the dump of
//! the live tree.

mod group;
mod manager;

pub(crate) use group::GroupInner;
pub use group::{GroupBuilder, GroupMode, PendingGroup};
pub use manager::{ManagerGuard, PendingManager};

use std::sync::{Arc, OnceLock, Weak};

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

/// `t` as a group, if it is one.
pub(crate) fn as_group(t: &Arc<dyn crate::context::Tracker>) -> Option<Arc<GroupInner>> {
    t.clone().as_any().downcast::<GroupInner>().ok()
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
