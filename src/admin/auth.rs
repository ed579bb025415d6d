//! The admin bearer token: read from `server.admin_token_file`, generated there (32 random
//! bytes, hex, mode 0600) on first start. The value is never logged; only its path is.
//! Presented tokens are compared in constant time.

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AdminState;
use super::error::ApiError;

/// Why the token could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading, creating or writing the file failed.
    #[error("admin token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file exists but holds no token.
    #[error(
        "admin token file {path} is empty: delete it to have a new token generated, or write one into it"
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The admin API's bearer token.
pub struct Token {
    value: String,
    path: PathBuf,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A token with a known value (tests, embedders).
    pub fn new(value: impl Into<String>, path: impl Into<PathBuf>) -> Token {
        Token {
            value: value.into(),
            path: path.into(),
        }
    }

    /// Reads the token from `path`, or generates one there when the file does not exist
    /// (creating its parent directory).
    pub fn load_or_create(path: &Path) -> Result<Token, TokenError> {
        let io = |source| TokenError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let value = text.trim().to_string();
                if value.is_empty() {
                    return Err(TokenError::Empty {
                        path: path.to_path_buf(),
                    });
                }
                warn_if_readable_by_others(path);
                tracing::info!(path = %path.display(), "admin token loaded");
                Ok(Token::new(value, path))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let bytes: [u8; 32] = rand::random();
                let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let mut f = create_private(path).map_err(io)?;
                f.write_all(format!("{value}\n").as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
                tracing::info!(path = %path.display(), "admin token generated (mode 0600)");
                Ok(Token::new(value, path))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The file the token lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when `presented` is the token (constant-time in the token's content).
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(self.value.as_bytes().ct_eq(presented.as_bytes()))
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", m.permissions().mode() & 0o777), "admin token file is readable by group or others; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// Middleware of the read-only routes: open when `server.status_public` is set, otherwise
/// [`require_token`].
pub(super) async fn require_token_unless_public(
    State(state): State<AdminState>,
    req: Request,
    next: Next,
) -> Response {
    if state.is_public() {
        return next.run(req).await;
    }
    require_token(State(state), req, next).await
}

/// Middleware: the request must carry `Authorization: Bearer <token>`.
pub(super) async fn require_token(
    State(state): State<AdminState>,
    req: Request,
    next: Next,
) -> Response {
    let path = state.token.path().display().to_string();
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let err = match presented {
        None => ApiError::Unauthorized(format!(
            "missing bearer token: send \"Authorization: Bearer <token>\" with the token from {path}"
        )),
        Some(h) => match h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
        {
            Some(t) if state.token.matches(t.trim()) => return next.run(req).await,
            Some(_) => ApiError::Unauthorized(format!(
                "wrong bearer token: use the token in {path} on the regdns host"
            )),
            None => ApiError::Unauthorized(format!(
                "the Authorization header must be \"Bearer <token>\" (token in {path})"
            )),
        },
    };
    err.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_then_reads_the_same_token_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/admin.token");
        let t = Token::load_or_create(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64, "32 bytes hex");
        assert!(t.matches(text.trim()));
        assert!(!t.matches("nope"));
        assert!(!t.matches(""));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let again = Token::load_or_create(&path).unwrap();
        assert!(again.matches(text.trim()));
        assert!(!format!("{again:?}").contains(text.trim()), "never printed");
    }

    #[test]
    fn empty_file_is_an_error_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        std::fs::write(&path, "\n").unwrap();
        let e = Token::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("is empty: delete it"), "{e}");
    }
}
