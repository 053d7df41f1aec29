//! DNS verification: the pure rules (`rules`: the records a set-up needs and the state machine
//! over observations) and the use case that claims due checks and records their results
//! (`checks`), with the rotation steps that a check makes due.

mod checks;
mod rules;

pub use checks::{
    AdviceFilter, AdviceItem, AdvicePage, CheckOutcome, Checks, DnsRecords, DueCheck,
};
pub use rules::{
    Expect, ExpectedRecord, MailFromHosts, Observation, Purpose, RecordCheck, VerifyPolicy,
    dmarc_record, expected_records, mail_from_records, restart, step,
};
