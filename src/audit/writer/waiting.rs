//! Row changes waiting for the record of the statement their marker
//! names: the decoding consumer can be quicker than the session whose
//! statement made the change. They wait in order (the changes behind one
//! wait too), each until its deadline; after it, the change is numbered
//! with its transaction only.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::audit::build::RecordBuilder;
use crate::audit::event::{AuditEvent, ChangeEvent};

/// How long a change waits for its statement's record.
const CHANGE_WAIT: Duration = Duration::from_millis(500);
/// How often waiting changes are looked at while nothing else comes.
pub(super) const CHANGE_POLL: Duration = Duration::from_millis(10);

type Ack = Option<oneshot::Sender<bool>>;

#[derive(Default)]
pub(super) struct WaitingChanges {
    queue: VecDeque<(Instant, AuditEvent, Ack)>,
}

impl WaitingChanges {
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether `change` must wait (behind others, or for its statement).
    pub fn must_wait(&self, change: &ChangeEvent, builder: &RecordBuilder) -> bool {
        !self.queue.is_empty() || !builder.change_ready(change)
    }

    pub fn push(&mut self, event: AuditEvent, ack: Ack) {
        self.queue
            .push_back((Instant::now() + CHANGE_WAIT, event, ack));
    }

    /// The first waiting change, when its statement has come or its wait
    /// is over (`all`: in any case).
    pub fn next_ready(&mut self, builder: &RecordBuilder, all: bool) -> Option<(AuditEvent, Ack)> {
        let (deadline, event, _) = self.queue.front()?;
        let ready = all
            || Instant::now() >= *deadline
            || matches!(event, AuditEvent::Change(c) if builder.change_ready(c));
        if !ready {
            return None;
        }
        self.queue.pop_front().map(|(_, event, ack)| (event, ack))
    }
}
