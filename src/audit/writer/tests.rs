//! The writer's flushing: a long `flush_interval` must never strand records
//! or keep a `before_ack` statement waiting.

use super::*;
use crate::audit::build::NoClassifier;
use crate::audit::event::{SessionEvent, SessionEventType, SessionInfo};
use crate::audit::record::Record;
use crate::audit::sink::{AuditSink, Offer, Room};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Counts records as written and as flushed.
struct CountingSink(Arc<Mutex<(u64, u64)>>);

impl AuditSink for CountingSink {
    fn name(&self) -> String {
        "counting".into()
    }
    fn offer(&mut self, _: &Record, _: u64, _: Room) -> Offer {
        self.0.lock().unwrap().0 += 1;
        Offer::Taken
    }
    fn flush(&mut self) -> io::Result<()> {
        let mut c = self.0.lock().unwrap();
        c.1 = c.0;
        Ok(())
    }
}

fn start_writer(flush_interval: Duration) -> (AuditSender, AuditWorker, Arc<Mutex<(u64, u64)>>) {
    let counts = Arc::new(Mutex::new((0, 0)));
    let options = WriterOptions {
        capacity: 1024,
        flush_interval,
        policy: FailurePolicy::FailClosed,
        gate: Arc::new(AuditGate::default()),
        start_gaps: Vec::new(),
        integrity: super::Integrity::unsigned(),
    };
    let builder = RecordBuilder::new("t".into(), 1024, Arc::new(NoClassifier));
    let sinks: Vec<Box<dyn AuditSink>> = vec![Box::new(CountingSink(counts.clone()))];
    let (sender, worker) = start(options, builder, sinks).unwrap();
    (sender, worker, counts)
}

fn connect() -> AuditEvent {
    AuditEvent::Session(Box::new(SessionEvent {
        event_type: SessionEventType::Connect,
        session: Arc::new(SessionInfo {
            session_id: "s".into(),
            backend_pid: 0,
            user: "u".into(),
            db_role: "u".into(),
            database: "d".into(),
            client_addr: std::net::Ipv4Addr::LOCALHOST.into(),
            client_port: 1,
            application_name: String::new(),
            tls: false,
            auth_method: String::new(),
            startup_identity: Default::default(),
        }),
        at: SystemTime::now(),
        reason: None,
        bytes_in: 0,
        bytes_out: 0,
        statements: 0,
        duration_us: 0,
    }))
}

fn flushed_within(counts: &Mutex<(u64, u64)>, want: u64, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if counts.lock().unwrap().1 == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[tokio::test]
async fn records_are_flushed_once_the_queue_runs_empty() {
    let (sender, worker, counts) = start_writer(Duration::from_secs(3600));
    for _ in 0..3 {
        sender.send(connect()).await;
    }
    // Well before the writer's 1 s idle tick would flush them (after the
    // start record and its checkpoint).
    assert!(
        flushed_within(&counts, 2 + 3, Duration::from_millis(500)),
        "{:?}",
        counts.lock().unwrap()
    );
    sender.close().await;
    drop(sender);
    worker.join();
}

#[tokio::test]
async fn before_ack_waiters_do_not_wait_for_the_interval() {
    let (sender, worker, _counts) = start_writer(Duration::from_secs(3600));
    // Keep the queue busy so that rounds do not find it empty.
    let busy = {
        let sender = sender.clone();
        tokio::spawn(async move {
            loop {
                sender.send(connect()).await;
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ack = sender.send_durable(connect()).await;
    let answer = tokio::time::timeout(Duration::from_secs(1), ack).await;
    assert!(matches!(answer, Ok(Ok(true))), "{answer:?}");
    busy.abort();
    sender.close().await;
    drop(sender);
    worker.join();
}

/// Keeps every record it is offered.
struct KeepingSink(Arc<Mutex<Vec<Record>>>);

impl AuditSink for KeepingSink {
    fn name(&self) -> String {
        "keeping".into()
    }
    fn offer(&mut self, record: &Record, _: u64, _: Room) -> Offer {
        self.0.lock().unwrap().push(record.clone());
        Offer::Taken
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a start finds (seqs the last run reserved and never used, spool
/// damage) is written in seq order, and the whole trail, through a clean
/// stop, walks as one chain.
#[tokio::test]
async fn start_gaps_stop_and_records_form_one_chain_in_seq_order() {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let options = WriterOptions {
        capacity: 1024,
        flush_interval: Duration::from_millis(10),
        policy: FailurePolicy::FailClosed,
        gate: Arc::new(AuditGate::default()),
        start_gaps: vec![
            StartGap::Lost {
                missing_events: 4,
                reason: "damage".into(),
            },
            StartGap::Unused {
                first_seq: 11,
                count: 5,
            },
        ],
        integrity: super::Integrity::unsigned(),
    };
    let builder = RecordBuilder::new("t".into(), 1024, Arc::new(NoClassifier)).starting_at(16);
    let sinks: Vec<Box<dyn AuditSink>> = vec![Box::new(KeepingSink(kept.clone()))];
    let (sender, worker) = start(options, builder, sinks).unwrap();
    for _ in 0..3 {
        sender.send(connect()).await;
    }
    sender.close().await;
    drop(sender);
    worker.join();
    let records = kept.lock().unwrap().clone();
    let seqs: Vec<u64> = records.iter().map(Record::seq).collect();
    // The unused run's gap (11), start (16), its checkpoint, the damage
    // gap, three records, stop and its checkpoint.
    assert_eq!(seqs, [11, 16, 17, 18, 19, 20, 21, 22, 23]);
    let mut walker = crate::audit::chain::verify::walk::Walker::new("t", None, Vec::new());
    for (i, r) in records.iter().enumerate() {
        walker.push(crate::audit::chain::verify::item::Item::of_record(
            r, i as u64,
        ));
    }
    let report = walker.finish();
    let kinds: Vec<&str> = report.findings.iter().map(|f| f.kind.name()).collect();
    // The unused run's gap says where the chain goes on: no finding but
    // the gaps and the unsigned checkpoints.
    assert_eq!(kinds, ["gap", "unsigned", "gap"], "{report:#?}");
}

/// A checkpoint after every `checkpoint_records` records, however the
/// records arrive.
#[tokio::test]
async fn checkpoints_come_every_n_records() {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let mut integrity = super::Integrity::unsigned();
    integrity.checkpoints = crate::audit::chain::checkpoint::Checkpoints::new(
        crate::audit::chain::checkpoint::CheckpointOptions {
            every_records: 5,
            ..Default::default()
        },
    )
    .unwrap();
    let options = WriterOptions {
        capacity: 1024,
        flush_interval: Duration::from_millis(10),
        policy: FailurePolicy::FailClosed,
        gate: Arc::new(AuditGate::default()),
        start_gaps: Vec::new(),
        integrity,
    };
    let builder = RecordBuilder::new("t".into(), 1024, Arc::new(NoClassifier));
    let sinks: Vec<Box<dyn AuditSink>> = vec![Box::new(KeepingSink(kept.clone()))];
    let (sender, worker) = start(options, builder, sinks).unwrap();
    for i in 0..60 {
        sender.send(connect()).await;
        if i % 7 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    sender.close().await;
    drop(sender);
    worker.join();
    let records = kept.lock().unwrap().clone();
    let mut since = 0;
    for r in &records {
        if matches!(r, Record::Checkpoint(_)) {
            since = 0;
        } else {
            since += 1;
            assert!(
                since <= 5,
                "more than 5 records without a checkpoint: {since}"
            );
        }
    }
}
