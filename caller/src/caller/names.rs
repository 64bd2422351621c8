//! Names: the default name of a call (from its job's type), and the top-level callers
//! found or made by name (`#[on_thread(name = "..")]` with no caller to hang from).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{registry, Caller, CallerState};
use crate::error::Error;
use crate::sync::{lock, Mutex};

/// The top-level callers found or made by name (see `Caller::top_level`), so that a name is
/// not looked up in the whole registry at every call.
fn top_level_names() -> &'static Mutex<HashMap<String, Caller>> {
    static NAMES: OnceLock<Mutex<HashMap<String, Caller>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

impl Caller {
    /// The running top-level caller named `name` (no parent, not a pooled worker), or a new
    /// one on its own thread: what `#[on_thread(name = "..")]` uses when there is no
    /// current or main-thread caller to hang a child from.
    pub(crate) fn top_level(name: &str) -> Result<Caller, Error> {
        // One lookup-or-create at a time, so two threads asking for the same new name
        // share one caller.
        let mut known = lock(top_level_names());
        if let Some(c) = Caller::known_top_level(&known, name) {
            return Ok(c);
        }
        let c = match Caller::scan_top_level(name) {
            Some(c) => c,
            None => Caller::builder().name(name).spawn()?,
        };
        known.insert(name.to_owned(), c.clone());
        Ok(c)
    }

    /// The running top-level caller named `name`, if any (see [`top_level`](Self::top_level)).
    pub(crate) fn existing_top_level(name: &str) -> Option<Caller> {
        let mut known = lock(top_level_names());
        if let Some(c) = Caller::known_top_level(&known, name) {
            return Some(c);
        }
        let c = Caller::scan_top_level(name)?;
        known.insert(name.to_owned(), c.clone());
        Some(c)
    }

    /// The remembered top-level caller of that name, if it still runs.
    fn known_top_level(known: &HashMap<String, Caller>, name: &str) -> Option<Caller> {
        known
            .get(name)
            .filter(|c| c.state() <= CallerState::Running)
            .cloned()
    }

    /// Search the registry (a caller made with `Caller::new_thread(name)` counts).
    fn scan_top_level(name: &str) -> Option<Caller> {
        registry::all().into_iter().find(|c| {
            c.name() == name
                && c.inner.parent.is_none()
                && !c.is_pooled()
                && c.state() <= CallerState::Running
        })
    }
}

/// The default name of a call of job type `J`, from `type_name::<J>()`: the function's
/// path as the user wrote it. A function item is its path already (`app::db::load`); a
/// closure or async block is named after the function it is written in
/// (`app::main::{{closure}}` → `app::main`), and the `job::*` wrappers are looked through
/// (`caller::job::FutureJob<app::fetch>` → `app::fetch`). Only slices of the type name:
/// nothing is allocated (and, inlined into the generic `schedule` where the type name is a
/// constant, the comparisons are on constant strings).
#[inline]
pub(crate) fn default_name(mut name: &'static str) -> &'static str {
    if let Some(wrapped) = name.strip_prefix("caller::job::") {
        for wrapper in ["FutureJob<", "TrySyncJob<", "TryFutureJob<"] {
            if let Some(inner) = wrapped
                .strip_prefix(wrapper)
                .and_then(|n| n.strip_suffix('>'))
            {
                name = inner;
                break;
            }
        }
    }
    if let Some(wrapped) = name.strip_prefix("caller::state::") {
        // `StateJob<S, F>` and its kin: the function is the last type argument.
        let inner = [
            "StateJob<",
            "StateAsyncJob<",
            "TryStateJob<",
            "TryStateAsyncJob<",
        ]
        .iter()
        .find_map(|w| wrapped.strip_prefix(w))
        .and_then(|n| n.strip_suffix('>'));
        if let Some(args) = inner {
            name = last_type_argument(args);
        }
    }
    while let Some(outer) = name.strip_suffix("::{{closure}}") {
        name = outer;
    }
    name
}

/// The last of the comma-separated type arguments `args` (commas inside `<..>`, `(..)`
/// and `[..]` do not separate).
fn last_type_argument(args: &'static str) -> &'static str {
    let mut depth = 0usize;
    let mut start = 0;
    for (i, b) in args.bytes().enumerate() {
        match b {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' | b')' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => start = i + 1,
            _ => {}
        }
    }
    args[start..].trim_start()
}
