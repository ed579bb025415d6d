//! Publishers: the effects of decisions. Each is idempotent and isolated from the others;
//! none of them runs on the DNS serving path.

pub mod dns;
pub mod notify;
pub mod privatezone;
