//! The failure policy over a sink whose answers the test sets.

use std::sync::{Arc, Mutex};

use super::*;
use crate::audit::build::NoClassifier;
use crate::audit::record::Record;
use crate::audit::sink::Released;

#[derive(Default)]
struct State {
    /// What the next offers answer: `None` takes them.
    refuse: Option<Refuse>,
    taken: Vec<(u64, u64, bool)>,
    held: Vec<u64>,
    waits: u32,
}

#[derive(Clone, Copy)]
enum Refuse {
    Full,
    Failing,
    /// Gap records fail, others are taken.
    GapsOnly,
}

struct FakeSink(Arc<Mutex<State>>);

impl AuditSink for FakeSink {
    fn name(&self) -> String {
        "fake".into()
    }
    fn offer(&mut self, record: &Record, end_seq: u64, _room: Room) -> Offer {
        let mut st = self.0.lock().unwrap();
        let gap = matches!(record, Record::Gap(g) if g.reason != "r");
        match st.refuse {
            Some(Refuse::GapsOnly) if gap => Offer::Failing(io::Error::other("disk full")),
            None | Some(Refuse::GapsOnly) => {
                // A gap record the policy made, not one the test wrote.
                let gap = matches!(record, Record::Gap(g) if g.reason != "r");
                st.taken.push((record.seq(), end_seq, gap));
                Offer::Taken
            }
            Some(Refuse::Full) => Offer::Full,
            Some(Refuse::Failing) => Offer::Failing(io::Error::other("disk full")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.0.lock().unwrap().refuse {
            Some(Refuse::Failing) => Err(io::Error::other("disk full")),
            _ => Ok(()),
        }
    }
    fn hold(&mut self, record: &Record, _end_seq: u64) {
        self.0.lock().unwrap().held.push(record.seq());
    }
    fn release_held(&mut self) -> Option<Released> {
        let mut st = self.0.lock().unwrap();
        let first = *st.held.first()?;
        let n = st.held.len() as u64;
        st.held.clear();
        Some(Released {
            first_seq: first,
            end_seq: first + n,
            records: n,
            end_chain: None,
        })
    }
    fn wait(&mut self) {
        let mut st = self.0.lock().unwrap();
        st.waits += 1;
        if st.waits == 3 {
            st.refuse = None; // room again
        }
    }
}

struct Rig {
    state: Arc<Mutex<State>>,
    dest: Destination,
    gate: AuditGate,
    builder: RecordBuilder,
}

fn rig(policy: FailurePolicy) -> Rig {
    let state = Arc::new(Mutex::new(State::default()));
    let gate = AuditGate::default();
    gate.set_policy(policy);
    Rig {
        dest: Destination::new(Box::new(FakeSink(state.clone()))),
        state,
        gate,
        builder: RecordBuilder::new("i".into(), 1024, Arc::new(NoClassifier)).starting_at(100),
    }
}

fn record(seq: u64) -> Record {
    RecordBuilder::new("i".into(), 1024, Arc::new(NoClassifier)).gap_for_run(
        seq,
        1,
        None,
        "r".into(),
    )
}

impl Rig {
    fn write(&mut self, seq: u64) -> io::Result<()> {
        self.dest
            .write(&record(seq), seq + 1, &self.gate, &self.builder)
    }
    fn refuse(&self, how: Option<Refuse>) {
        self.state.lock().unwrap().refuse = how;
    }
    fn taken(&self) -> Vec<(u64, u64, bool)> {
        self.state.lock().unwrap().taken.clone()
    }
}

#[test]
fn fail_open_skips_a_full_sink_and_tells_the_run_once_it_has_room() {
    let mut r = rig(FailurePolicy::FailOpen);
    r.write(1).unwrap();
    r.refuse(Some(Refuse::Full));
    for seq in 2..=4 {
        r.write(seq).unwrap();
    }
    assert_eq!(r.gate.dropped(), 3);
    r.refuse(None);
    r.write(5).unwrap();
    // The gap takes the first skipped seq and covers the three.
    assert_eq!(r.taken(), vec![(1, 2, false), (2, 5, true), (5, 6, false)]);
}

#[test]
fn fail_open_releases_what_a_failing_sink_held_into_the_same_run() {
    let mut r = rig(FailurePolicy::FailOpen);
    r.state.lock().unwrap().held = vec![7, 8];
    r.refuse(Some(Refuse::Failing));
    r.write(9).unwrap();
    assert_eq!(r.gate.dropped(), 3, "two held and the new one");
    r.refuse(None);
    r.dest.flush(&r.gate, &r.builder).unwrap();
    assert_eq!(r.taken(), vec![(7, 10, true)]);
}

#[test]
fn fail_closed_waits_for_a_full_sink_and_loses_nothing() {
    let mut r = rig(FailurePolicy::FailClosed);
    r.refuse(Some(Refuse::Full));
    r.write(1).unwrap();
    assert_eq!(r.state.lock().unwrap().waits, 3);
    assert_eq!(r.taken(), vec![(1, 2, false)]);
    assert_eq!(r.gate.dropped(), 0);
}

#[test]
fn fail_closed_holds_a_record_a_failing_sink_did_not_take() {
    let mut r = rig(FailurePolicy::FailClosed);
    r.refuse(Some(Refuse::Failing));
    assert!(
        r.write(1).is_err(),
        "not written yet: no before_ack success"
    );
    assert_eq!(r.state.lock().unwrap().held, vec![1]);
    assert_eq!(r.gate.dropped(), 0);
}

#[test]
fn stopping_with_a_full_sink_tries_past_its_limit_then_reports_the_loss() {
    let mut r = rig(FailurePolicy::FailClosed);
    r.gate.stop();
    r.refuse(Some(Refuse::Full));
    // The fake refuses past the limit too: the record is reported, not hung on.
    r.state.lock().unwrap().waits = 10;
    assert!(r.write(1).is_err());
}

/// The sink takes records again before it takes the gap (its retry came
/// due in between): the record still waits behind the gap, joining the run,
/// so no sink holds a seq above a gap it has not written.
#[test]
fn a_record_never_goes_ahead_of_an_untold_gap() {
    let mut r = rig(FailurePolicy::FailOpen);
    r.refuse(Some(Refuse::Failing));
    r.write(1).unwrap();
    // The gap offer fails, the record's would succeed: simulate a retry
    // that comes due between the two by failing only gap records.
    r.state.lock().unwrap().refuse = Some(Refuse::GapsOnly);
    r.write(2).unwrap();
    r.refuse(None);
    r.write(3).unwrap();
    assert_eq!(r.taken(), vec![(1, 3, true), (3, 4, false)]);
    assert_eq!(r.gate.dropped(), 2);
}
