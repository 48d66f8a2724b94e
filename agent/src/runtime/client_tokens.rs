//! The clientId -> clientToken pairs of a third-party action (`JOB_CLIENT_TOKENS_FILE`), re-read when a
//! job names a clientId the agent has not seen, so a new customer needs no restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::config::ConfigError;

const SETTING: &str = "JOB_CLIENT_TOKENS_FILE (--client-tokens-file)";

/// The pairs, loaded from a JSON object `{clientId: clientToken}`.
#[derive(Debug)]
pub struct ClientTokens {
    path: PathBuf,
    tokens: RwLock<HashMap<String, String>>,
}

fn read(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(SETTING, format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        ConfigError::new(
            SETTING,
            format!(
                "{} is not a JSON object of clientId to clientToken strings: {e}",
                path.display()
            ),
        )
    })
}

impl ClientTokens {
    /// Loads the file; a missing or malformed file is a configuration error.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let path = path.into();
        let tokens = read(&path)?;
        if tokens.is_empty() {
            tracing::warn!(path = %path.display(), "the client tokens file holds no clientId yet");
        }
        Ok(Self {
            path,
            tokens: RwLock::new(tokens),
        })
    }

    /// Pairs given directly (tests, embedding).
    pub fn from_map(tokens: HashMap<String, String>) -> Self {
        Self {
            path: PathBuf::new(),
            tokens: RwLock::new(tokens),
        }
    }

    /// The token for `client_id`, re-reading the file once if it is not known yet.
    pub fn get(&self, client_id: &str) -> Option<String> {
        if let Some(token) = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
        {
            return Some(token.clone());
        }
        if self.path.as_os_str().is_empty() {
            return None;
        }
        match read(&self.path) {
            Ok(fresh) => {
                let token = fresh.get(client_id).cloned();
                *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                token
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the client tokens file");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_on_an_unknown_client_id() {
        let dir = std::env::temp_dir().join(format!("agent-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.json");
        std::fs::write(&path, r#"{"a": "ta"}"#).unwrap();
        let tokens = ClientTokens::load(&path).unwrap();
        assert_eq!(tokens.get("a").as_deref(), Some("ta"));
        assert_eq!(tokens.get("b"), None);
        std::fs::write(&path, r#"{"a": "ta", "b": "tb"}"#).unwrap();
        assert_eq!(tokens.get("b").as_deref(), Some("tb"));
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(tokens.get("c"), None);
        assert!(
            ClientTokens::load(&path)
                .unwrap_err()
                .to_string()
                .starts_with("JOB_CLIENT_TOKENS_FILE")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
