//! One way to print an error with its causes, for logs, status and messages.

use std::error::Error;

/// `error: cause: cause …`, without repeating a cause whose text is already in the line
/// (many errors print their source in their own message).
pub fn error_chain(e: &dyn Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct E(String, #[source] Option<Box<E>>);

    #[test]
    fn appends_causes_not_already_in_the_text() {
        let inner = E("connection refused".into(), None);
        let mid = E("connect failed".into(), Some(Box::new(inner)));
        let top = E("GET /v2/".into(), Some(Box::new(mid)));
        assert_eq!(
            error_chain(&top),
            "GET /v2/: connect failed: connection refused"
        );
        let repeats = E(
            "call failed: connection refused".into(),
            Some(Box::new(E("connection refused".into(), None))),
        );
        assert_eq!(error_chain(&repeats), "call failed: connection refused");
    }
}
