//! The whole HTTP edge: raw request bytes, sent as they are or signed with aws-sigv4, through
//! `sesame_api::app`; every response must have the AWS error shape and no unexpected 5xx.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sesame_fuzz::edge::run(data));
