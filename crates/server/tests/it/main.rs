//! The integration test binary: every test starts the real `sesame` binary on port 0 and talks
//! to it with `aws-sdk-sesv2` (negative cases the SDK cannot produce go through the signed
//! `raw_request` helper).

mod addresses;
mod auth;
mod browser;
mod console;
#[path = "../crash/customerdns.rs"]
#[allow(dead_code)]
mod customerdns;
mod dns;
mod durability;
mod errors;
#[allow(dead_code)]
mod fakedns;
mod forwarddns;
mod harness;
mod hostile;
mod identities;
mod mailfrom;
mod metrics;
mod publisher;
mod sandbox;
mod scrape;
mod secrets;
mod send;
mod templates;
mod tidy;
