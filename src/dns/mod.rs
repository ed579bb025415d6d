//! The serving path: reads the current [`crate::snapshot::Snapshot`] and nothing else (plus
//! TSIG keys and query counters).
//!
//! - [`request`]: allocation-free query parsing (header, question, OPT, ECS).
//! - [`respond`]: one query in, one response out: fast path from pre-encoded bytes,
//!   general path through the snapshot's lookup and general answer
//!   ([`crate::snapshot::answer`]), remembered per UDP thread in [`cache`]; `wire` holds
//!   the bytes every response shares (OPT, EDE, error responses) and `signed` the TSIG front.
//! - [`xfr`]: AXFR and IXFR out, over TCP (and IXFR over UDP); `policy` answers the names
//!   of response policy zones (RPZ) to their transfer clients only.
//! - [`server`]: UDP and TCP sockets; [`mmsg`] batches UDP I/O on Linux; [`stream`] frames
//!   the queries a TCP read brings.

pub mod cache;
#[cfg(target_os = "linux")]
pub mod mmsg;
mod policy;
pub mod request;
pub mod respond;
pub mod server;
mod signed;
pub mod stream;
mod wire;
pub mod xfr;
