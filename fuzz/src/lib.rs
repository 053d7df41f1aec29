//! Shared harness code for the fuzz targets: the in-memory API state the HTTP target drives,
//! raw-bytes-to-request parsing, SigV4 signing of fuzzed requests with the real `aws-sigv4`
//! crate, and the checks every HTTP response must pass.

pub mod edge;
