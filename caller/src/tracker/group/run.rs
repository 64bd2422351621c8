//! The group's run: [`GroupRun`], the future behind [`PendingGroup::run`] and
//! [`PendingGroup::try_run`]. It owns the phase transitions of the specification at the
//! top of [`super`], one step each: enter (Created → Body), the body, the drain
//! (Draining → Exited) and the exit's outcome; its `Drop` is the "run future dropped" edge.
//!
//! [`PendingGroup::run`]: super::PendingGroup::run
//! [`PendingGroup::try_run`]: super::PendingGroup::try_run

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Poll};

use super::state::{DrainStatus, Exit, GroupInner, Phase, TransitionToBody};
use crate::context::Context;
use crate::error::{Error, GroupError, MemberFailure};
use crate::timer::Sleep;

pin_project_lite::pin_project! {
    /// One entry into a group: `Created` until its first poll, then the group's phases in
    /// order. The body is pinned in place, polled inside the group's context, and dropped
    /// as soon as it ends or the group is cancelled.
    ///
    /// # Cancellation
    /// Dropped in `Body` or `Draining`, it drops the body, then cancels the group (every
    /// member) with "the group was dropped before it exited" and marks it exited, so
    /// nothing outlives the scope; the members are cancelled even if the body's `Drop`
    /// panics.
    pub(super) struct GroupRun<F: Future> {
        inner: Arc<GroupInner>,
        // This run's phase: the group's own until the exit, and `Exited` also when the
        // entry was refused (a second `run`).
        phase: Phase,
        #[pin]
        body: Option<F>,
        // `try_run`: whether the body's output is an error (it cancels the group and comes
        // out unchanged).
        body_failed: fn(&F::Output) -> bool,
        output: Option<F::Output>,
        body_err: bool,
        // The body's context: the context `run` was polled in, plus this group.
        ctx: Context,
        // The innermost enclosing group, which sees this group's failures once.
        parent: Option<Arc<GroupInner>>,
        // The enclosing groups whose bodies this shielded group holds open while it runs.
        shielding: Vec<Arc<GroupInner>>,
        deadline: Option<Sleep>,
        drain_limit: Option<Sleep>,
    }

    impl<F: Future> PinnedDrop for GroupRun<F> {
        /// "run future dropped: every member cancelled".
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if !matches!(*this.phase, Phase::Body | Phase::Draining) {
                return;
            }
            let _abandon = Abandon {
                inner: this.inner,
                shielding: this.shielding,
            };
            // The body and its output first (what their drop does to their own pendings
            // comes before the group's cancel), then `_abandon`.
            drop(this.output.take());
            this.body.set(None);
        }
    }
}

/// The cancel of a run dropped before it exited, done in `Drop` so that a panicking body
/// destructor does not skip it.
struct Abandon<'a> {
    inner: &'a GroupInner,
    shielding: &'a mut Vec<Arc<GroupInner>>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        self.inner.cancel("the group was dropped before it exited");
        self.inner.exit();
        leave(self.inner, self.shielding);
    }
}

/// Leave the enclosing groups (give back the shield held on their bodies) and the dump.
fn leave(inner: &GroupInner, shielding: &mut Vec<Arc<GroupInner>>) {
    for g in shielding.drain(..) {
        g.shield_inside(false);
    }
    crate::tracker::registry_remove(inner.id);
}

impl<F: Future> GroupRun<F> {
    pub(super) fn new(
        inner: Arc<GroupInner>,
        body: F,
        body_failed: fn(&F::Output) -> bool,
    ) -> Self {
        GroupRun {
            inner,
            phase: Phase::Created,
            body: Some(body),
            body_failed,
            output: None,
            body_err: false,
            ctx: Context::empty(),
            parent: None,
            shielding: Vec::new(),
            deadline: None,
            drain_limit: None,
        }
    }

    /// `Created ──run──▶ Body`: "A group is entered once with [`PendingGroup::run`]. While
    /// its body runs, the group is in the body's [`Context`]".
    ///
    /// A second entry is refused. The group joins the groups of the context it is entered
    /// in: a child of each (their cancel reaches it), or, shielded, holding their bodies
    /// open while it runs ("A cancelled group whose body is inside an active shielded
    /// group keeps running that body until the shielded group exits"). Its timeout starts
    /// now.
    ///
    /// [`PendingGroup::run`]: super::PendingGroup::run
    fn enter(self: Pin<&mut Self>) -> Result<(), Error> {
        let this = self.project();
        let inner = &*this.inner;
        if let TransitionToBody::EnteredBefore = inner.enter() {
            *this.phase = Phase::Exited;
            return Err(Error::invalid(
                "a PendingGroup can be entered once: make a new group for another scope",
            ));
        }
        *this.phase = Phase::Body;
        let outer = Context::current();
        let enclosing: Vec<Arc<GroupInner>> = outer
            .trackers()
            .iter()
            .filter_map(crate::tracker::as_group)
            .collect();
        *this.parent = enclosing.last().cloned();
        for g in &enclosing {
            if inner.shield {
                g.shield_inside(true);
            } else {
                g.add_child(this.inner);
            }
        }
        crate::tracker::registry_insert(this.inner);
        if inner.shield {
            *this.shielding = enclosing;
        }
        *this.ctx = outer.with_tracker(this.inner.clone());
        *this.deadline = inner.timeout.map(Sleep::new);
        Ok(())
    }

    /// Every poll, in `Body` and `Draining`: take the task's waker (members and `cancel`
    /// wake it), and "cancel/timeout": at the deadline the group cancels itself.
    fn watch(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) {
        let this = self.project();
        this.inner.set_waker(cx.waker());
        if let Some(d) = this.deadline {
            if Pin::new(d).poll(cx).is_ready() {
                *this.deadline = None;
                this.inner.time_out(this.inner.timeout.unwrap_or_default());
            }
        }
    }

    /// `Body ──body ends──▶ Draining`, or "cancel/timeout: body dropped, members
    /// cancelled": poll the body inside the group's context until it ends; drop it at
    /// once if the group is cancelled, unless a shielded group inside it holds it open.
    /// A body that failed (`try_run`'s `Err`) cancels the group.
    fn poll_body(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let inner = &*this.inner;
        // Through `as_pin_mut`, never `is_some()`: a shared borrow of the whole pinned
        // body would freeze the borrows it holds into itself (miri flags it).
        if let Some(fut) = this.body.as_mut().as_pin_mut() {
            if inner.body_must_stop() {
                this.body.set(None);
            } else {
                match crate::context::in_context(this.ctx, || fut.poll(cx)) {
                    Poll::Ready(out) => {
                        this.body.set(None);
                        if (this.body_failed)(&out) {
                            *this.body_err = true;
                            inner.cancel("the group's body failed");
                        }
                        *this.output = Some(out);
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        *this.phase = Phase::Draining;
        inner.start_draining();
        Poll::Ready(())
    }

    /// `Draining ──members done──▶ Exited`, and "the drain is bounded by
    /// cancellation_timeout": ready when no member is left, or, once the group is
    /// cancelled, when `cancellation_timeout` has passed since the cancel, with the
    /// members still running (`#id name`).
    fn poll_drain(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Vec<String>> {
        let this = self.project();
        let inner = &*this.inner;
        match inner.drain_status() {
            DrainStatus::Done => Poll::Ready(Vec::new()),
            DrainStatus::Waiting {
                cancelled_at: Some(at),
            } => {
                let limit = this.drain_limit.get_or_insert_with(|| {
                    Sleep::until(at.checked_add(inner.cancellation_timeout))
                });
                ready!(Pin::new(limit).poll(cx));
                Poll::Ready(inner.running_names())
            }
            DrainStatus::Waiting { cancelled_at: None } => Poll::Pending,
        }
    }

    /// `Exited`: the outcome, by the specification's rules. "Failures …: the exit is
    /// `Err(Error::Group)` holding every failure"; members still running when the drain
    /// gave up are named in it too. "Exit when the group ended cancelled … modes 1, 3 and
    /// `Supervisor` give `Err(Error::Cancelled)`, modes 0 and 2 exit quietly" (a group
    /// ended by its own timeout says so: `is_timeout()`). The body's own error
    /// (`try_run`) comes out unchanged. A raised failure is reported once to the
    /// enclosing group.
    fn exit(self: Pin<&mut Self>, abandoned: Vec<String>) -> Result<Option<F::Output>, Error> {
        let this = self.project();
        let inner = &*this.inner;
        *this.phase = Phase::Exited;
        let Exit {
            failures,
            cancelled,
            timed_out,
        } = inner.exit();
        leave(inner, this.shielding);
        let output = this.output.take();
        if !abandoned.is_empty() {
            tracing::warn!(
                group = inner.id,
                still_running = ?abandoned,
                "the group gave up waiting for members after its cancellation timeout"
            );
        }
        if *this.body_err {
            // The body's own error comes out unchanged, whatever the mode.
            return Ok(output);
        }
        let raised = if !failures.is_empty() || !abandoned.is_empty() {
            Error::Group(Arc::new(GroupError {
                failures,
                cancelled,
                timed_out,
                abandoned,
            }))
        } else {
            match cancelled {
                // Ended by its own timeout: say so (`is_timeout()`), still a cancellation.
                Some(message) if inner.mode.raises_when_cancelled() && timed_out.is_some() => {
                    Error::Group(Arc::new(GroupError {
                        failures: Vec::new(),
                        cancelled: Some(message),
                        timed_out,
                        abandoned: Vec::new(),
                    }))
                }
                Some(message) if inner.mode.raises_when_cancelled() => Error::Cancelled { message },
                _ => return Ok(output),
            }
        };
        if raised.is_failure() {
            // The enclosing group sees this group's failures once, as they were raised.
            if let Some(parent) = this.parent {
                parent.record_failure(MemberFailure::new(
                    inner.id,
                    format!("group #{}", inner.id),
                    raised.clone(),
                ));
            }
        }
        Err(raised)
    }
}

impl<F: Future> Future for GroupRun<F> {
    type Output = Result<Option<F::Output>, Error>;

    /// The phases in order, as far as each can go in this poll: enter on the first poll,
    /// then the body until it ends, then the drain until it is over, then the exit.
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        // The phase is read through the projection, never through `&Self`: a shared
        // borrow of the whole run covers the pinned body and would freeze the borrows it
        // holds into itself (miri's stacked borrows flags it).
        match *self.as_mut().project().phase {
            Phase::Created => {
                if let Err(e) = self.as_mut().enter() {
                    return Poll::Ready(Err(e));
                }
            }
            Phase::Body | Phase::Draining => {}
            Phase::Exited => panic!("a group's run future was polled after it returned"),
        }
        self.as_mut().watch(cx);
        if *self.as_mut().project().phase == Phase::Body {
            ready!(self.as_mut().poll_body(cx));
        }
        let abandoned = ready!(self.as_mut().poll_drain(cx));
        Poll::Ready(self.exit(abandoned))
    }
}
