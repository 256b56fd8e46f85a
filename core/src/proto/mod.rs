//! Wire protocol: the binary heartbeat message and its authentication (sans-IO).
//!
//! [`wire`] encodes and decodes messages; [`auth`] computes and checks their MACs;
//! [`heartbeat`] is Heartbeat 3.0.6's own wire format (rolling migration).
//! Decoding never panics: every malformed input becomes the codec's own error
//! ([`wire::DecodeError`], [`heartbeat::HbError`]); nothing here depends on the cluster
//! logic, whose verdicts (`cluster::Reject`) wrap these.

pub mod auth;
pub mod heartbeat;
pub mod wire;
