//! What every Alibaba Cloud API client of regdns shares: the V3 request signature
//! ([`sign`]), one signed RPC call with its error classes ([`rpc`]), the credential chain
//! with its refreshing cache ([`credentials`]), and the [`session`] a provider holds
//! (credentials, refresh, health). Used by the PrivateZone and Alidns providers
//! (`publish`) and by the Container Registry login of the canary (`probe::acr`).
//! Knows nothing of DNS or of the decisions. The API facts it relies on are in
//! `docs/providers/alibaba-cloud-api.md`.

pub mod credentials;
pub mod rpc;
pub mod session;
pub mod sign;
