//! A caller's life seen from outside: finding callers (current, main thread, by id), what
//! a caller says about itself, its lifecycle events, `stop`, and its children.

use std::sync::Weak;

use super::inbox::Fold;
use super::{registry, Backend, Caller, CallerBuilder, CallerState, Msg};
use crate::error::Error;
use crate::pending::AnyPending;
use crate::rt::CallerId;
use crate::sync::{lock, Ordering};

impl Caller {
    /// The caller whose loop runs on this thread (inside a scheduled call: the caller
    /// running it).
    ///
    /// ```
    /// assert!(caller::Caller::current().is_none());
    /// ```
    pub fn current() -> Option<Caller> {
        crate::rt::loop_id().and_then(registry::get)
    }

    /// The main thread's caller, if the main thread runs one (`#[caller::main]` or
    /// [`CallerBuilder::block_on`] on the main thread). async-kernel's `"MainThread"`.
    pub fn main_thread() -> Option<Caller> {
        registry::main()
    }

    /// The id of the current thread's caller (async-kernel's `id_current`).
    pub fn id_current() -> CallerId {
        CallerId::current()
    }

    /// The caller with this id, if it exists and has not stopped.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-existing")?;
    /// assert_eq!(caller::Caller::get_existing(c.id()), Some(c.clone()));
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn get_existing(id: CallerId) -> Option<Caller> {
        registry::get(id)
    }

    /// Every caller not yet stopped; with `running_only`, only those whose loop runs.
    pub fn all_callers(running_only: bool) -> Vec<Caller> {
        registry::all()
            .into_iter()
            .filter(|c| !running_only || c.running())
            .collect()
    }

    /// The pending of the call running on this thread, if any. A sync function can poll
    /// its `cancelled()` to stop early.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-current-pending")?;
    /// let seen = c.call_soon(|| caller::Caller::current_pending().is_some()).wait_sync(None)?;
    /// assert!(seen);
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn current_pending() -> Option<AnyPending> {
        crate::context::current_pending()
    }

    /// This caller's id.
    pub fn id(&self) -> CallerId {
        self.inner.id
    }

    /// This caller's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The backend this caller runs.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The thread the caller runs on.
    pub fn thread(&self) -> &std::thread::Thread {
        self.inner
            .thread
            .get()
            .expect("a caller's thread is set when it is created")
    }

    /// Whether a non-forced [`stop`](Self::stop) is ignored.
    pub fn protected(&self) -> bool {
        self.inner.protected.load(Ordering::Acquire)
    }

    /// Where the caller is in its life.
    pub fn state(&self) -> CallerState {
        CallerState::from_u8(self.inner.state.load(Ordering::Acquire))
    }

    /// `true` while the caller runs calls.
    pub fn running(&self) -> bool {
        self.state() == CallerState::Running
    }

    /// Whether this caller is a worker of the [`to_thread`](Self::to_thread) pool (it may
    /// stop when idle, so it is no place for long-lived children).
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let mut on_worker = caller::to_thread(|| caller::Caller::current().unwrap().is_pooled());
    /// assert!(on_worker.wait_sync(None)?);
    /// # Ok(()) }
    /// ```
    pub fn is_pooled(&self) -> bool {
        self.inner.pooled.load(Ordering::Acquire)
    }

    /// The caller that created this one with [`get`](Self::get), if any.
    pub fn parent(&self) -> Option<Caller> {
        self.inner
            .parent
            .as_ref()
            .and_then(Weak::upgrade)
            .map(|inner| Caller { inner })
    }

    /// The children created with [`get`](Self::get) that have not stopped.
    pub fn children(&self) -> Vec<Caller> {
        lock(&self.inner.children).clone()
    }

    /// Done when the loop has started.
    pub fn started(&self) -> crate::WaitDone {
        self.inner.started.any().wait_done(None)
    }

    /// Done when `stop` has been accepted.
    pub fn stopping(&self) -> crate::WaitDone {
        self.inner.stopping.any().wait_done(None)
    }

    /// Done when the loop has ended (every call done, children stopped).
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-stopped")?;
    /// c.stop(false);
    /// futures::executor::block_on(c.stopped())?;
    /// # Ok(()) }
    /// ```
    pub fn stopped(&self) -> crate::WaitDone {
        self.inner.stopped.any().wait_done(None)
    }

    /// Stop the caller: every unfinished call (queued or running) is cancelled with a
    /// message that says the caller stopped, children are stopped first, and the thread's
    /// loop ends. Returns at once with the state; await [`stopped`](Self::stopped) to know
    /// when it is over. A protected caller ignores a non-forced stop.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-stop")?;
    /// c.stop(false);
    /// let mut late = c.call_soon(|| 1);
    /// assert!(late.wait_sync(None).unwrap_err().is_cancelled());
    /// # Ok(()) }
    /// ```
    pub fn stop(&self, force: bool) -> CallerState {
        if self.protected() && !force {
            tracing::debug!(caller = %self.inner.name, "protected caller ignored a stop");
            return self.state();
        }
        let mut cur = self.inner.state.load(Ordering::Acquire);
        loop {
            if cur >= 2 {
                return CallerState::from_u8(cur);
            }
            match self
                .inner
                .state
                .compare_exchange(cur, 2, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        tracing::info!(caller = %self.inner.name, force, "caller stopping");
        self.inner.stopping.set_result(());
        let reason = self.stop_reason();
        for msg in self.inner.inbox.close() {
            msg.refuse(&reason);
        }
        self.stop_attachments(&reason);
        CallerState::Stopping
    }

    /// Hand the message `make` gives to this caller's loop, or fold it into the message
    /// at the tail of the inbox, or decline (`Ok(false)`); see `Inbox::push_with`.
    /// `Err(())` if the caller stopped.
    pub(crate) fn send_with(
        &self,
        make: impl FnOnce(Option<&mut Msg>) -> Fold,
    ) -> Result<bool, ()> {
        self.inner.inbox.push_with(make)
    }

    /// Hand `msg` to this caller's loop; handed back if the caller stopped.
    pub(crate) fn send(&self, msg: Msg) -> Result<(), Msg> {
        self.inner.inbox.push(msg)
    }

    pub(crate) fn stop_reason(&self) -> String {
        format!("caller '{}' stopped", self.inner.name)
    }

    /// Get the child caller named `name`, creating it (on a new thread) if needed. The
    /// child is stopped with this caller. async-kernel's `Caller.get`.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let parent = caller::Caller::new_thread("doc-parent")?;
    /// let a = parent.get("io")?;
    /// assert_eq!(parent.get("io")?, a);
    /// assert_eq!(a.parent(), Some(parent.clone()));
    /// # parent.stop(true); Ok(()) }
    /// ```
    pub fn get(&self, name: &str) -> Result<Caller, Error> {
        self.get_with(Caller::builder().name(name))
    }

    /// [`get`](Self::get) with options: an existing child of that name with another
    /// backend is an error (`Error::Mismatch`).
    pub fn get_with(&self, opts: CallerBuilder) -> Result<Caller, Error> {
        let name = opts
            .name
            .clone()
            .ok_or_else(|| Error::invalid("Caller::get_with needs a name"))?;
        let mut children = lock(&self.inner.children);
        if let Some(c) = children.iter().find(|c| c.name() == name) {
            c.check(&opts)?;
            return Ok(c.clone());
        }
        drop(children);
        let child = CallerBuilder {
            parent: Some(self.clone()),
            ..opts
        }
        .spawn()?;
        children = lock(&self.inner.children);
        // Another thread may have created the same child meanwhile: keep the first.
        if let Some(first) = children.iter().find(|c| c.name() == name && **c != child) {
            let first = first.clone();
            children.retain(|c| *c != child);
            drop(children);
            child.stop(true);
            return Ok(first);
        }
        Ok(child)
    }

    pub(super) fn check(&self, opts: &CallerBuilder) -> Result<(), Error> {
        if let Some(name) = &opts.name {
            if **name != *self.inner.name {
                return Err(Error::Mismatch {
                    what: "name",
                    expected: name.clone(),
                    found: self.inner.name.to_string(),
                });
            }
        }
        if opts.backend_asked && opts.backend != self.inner.backend {
            return Err(Error::Mismatch {
                what: "backend",
                expected: opts.backend.to_string(),
                found: self.inner.backend.to_string(),
            });
        }
        Ok(())
    }
}
