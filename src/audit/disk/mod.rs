//! Small durable files of the audit path: a number overwritten in place in
//! two CRC-checked slots (`slotfile`), the seq high-water mark built on it
//! (`seqmark`), and the per-path process lock (`lockfile`).

pub mod lockfile;
pub mod seqmark;
pub mod slotfile;
