//! Session and transaction events' records.

use std::time::SystemTime;

use super::RecordBuilder;
use crate::audit::event::{SessionEvent, SessionEventType, TransactionEvent};
use crate::audit::record::{micros_since_epoch, SessionRecord, TransactionRecord};

impl RecordBuilder {
    pub(super) fn session(&mut self, e: SessionEvent) -> SessionRecord {
        let header = self.header(e.at);
        let s = &e.session;
        let effective_role = self.roles.effective(s);
        if matches!(
            e.event_type,
            SessionEventType::Disconnect | SessionEventType::AuthFailed
        ) {
            self.roles.end_session(&s.session_id);
            self.transactions.end_session(&s.session_id);
            self.columns.end_session(&s.session_id);
        }
        SessionRecord {
            header,
            event_type: e.event_type,
            session_id: s.session_id.clone(),
            backend_pid: s.backend_pid,
            user: s.user.clone(),
            db_role: s.db_role.clone(),
            effective_role,
            database: s.database.clone(),
            client_addr: self.client_addr(s.client_addr),
            client_port: s.client_port,
            application_name: s.application_name.clone(),
            tls: s.tls,
            auth_method: s.auth_method.clone(),
            reason: e.reason.unwrap_or_default(),
            bytes_in: e.bytes_in,
            bytes_out: e.bytes_out,
            statements: e.statements,
            duration_us: e.duration_us,
        }
    }

    pub(super) fn transaction(&mut self, e: TransactionEvent) -> TransactionRecord {
        let header = self.header(SystemTime::now());
        let s = &e.session;
        let seqs = self.transactions.end(&e);
        if let Some(recent) = &mut self.recent {
            recent.ended(e.transaction_id, e.tail_statement);
        }
        TransactionRecord {
            header,
            transaction_id: e.transaction_id,
            session_id: s.session_id.clone(),
            backend_pid: s.backend_pid,
            user: s.user.clone(),
            db_role: s.db_role.clone(),
            effective_role: self.roles.effective(s),
            database: s.database.clone(),
            client_addr: self.client_addr(s.client_addr),
            client_port: s.client_port,
            application_name: e.application_name.to_string(),
            outcome: e.outcome,
            statements: u64::from(e.statements),
            first_seq: seqs.first_seq,
            last_seq: seqs.last_seq,
            started_at: micros_since_epoch(e.started_at),
            duration_us: e.duration_us,
            rows_changed: seqs.rows_changed,
            xid: None,
            undone_from_seq: seqs.undone_from_seq,
            undone_to_seq: seqs.undone_to_seq,
            end_user: e.end_user,
        }
    }
}
