//! Parsing and checking a create request's body at the edge, so the backend only sees valid ones.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Longest accepted text field; keeps the event log and the details page sane.
const MAX_FIELD_CHARS: usize = 1024;

/// A valid `POST /v1/loadtests` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTest {
    /// The preset to run.
    pub preset: String,
    /// The script the test runs (the harness makes it unique per action execution).
    pub runnable_file: String,
    /// Creating twice with the same key returns the first test.
    pub idempotency_key: Option<String>,
}

impl CreateTest {
    /// A request without an idempotency key.
    pub fn new(preset: impl Into<String>, runnable_file: impl Into<String>) -> Self {
        CreateTest {
            preset: preset.into(),
            runnable_file: runnable_file.into(),
            idempotency_key: None,
        }
    }

    /// The same request with an idempotency key.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Parses a body: 400 for anything that is not JSON, 422 naming the field for a missing or bad one.
    /// Unknown fields are ignored, as most JSON APIs do.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::MalformedJson(
                "the body is empty; send {\"preset\": \"...\", \"runnableFile\": \"...\", \"idempotencyKey\": \"...\"}"
                    .into(),
            ));
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(ApiError::MalformedJson(format!(
                "the body must be a JSON object, got {}",
                kind_of(&value)
            )));
        };
        Ok(CreateTest {
            preset: required(&map, "preset")?,
            runnable_file: required(&map, "runnableFile")?,
            idempotency_key: optional(&map, "idempotencyKey")?,
        })
    }
}

fn required(map: &Map<String, Value>, field: &'static str) -> Result<String, ApiError> {
    optional(map, field)?.ok_or(ApiError::MissingField(field))
}

/// A text field: absent or `null` is `None`; anything but a non-blank string within the length cap is refused.
fn optional(map: &Map<String, Value>, field: &'static str) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::InvalidField {
            field,
            problem: "must not be empty".into(),
        }),
        Some(Value::String(s)) if s.chars().count() > MAX_FIELD_CHARS => {
            Err(ApiError::InvalidField {
                field,
                problem: format!("is longer than {MAX_FIELD_CHARS} characters"),
            })
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::InvalidField {
            field,
            problem: format!("must be a string, got {}", kind_of(other)),
        }),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_body_parses() {
        let r = CreateTest::from_json(
            br#"{"preset": "soak", "runnableFile": "a.jmx", "idempotencyKey": "k1", "x": 1}"#,
        );
        assert_eq!(r, Ok(CreateTest::new("soak", "a.jmx").with_key("k1")));
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        assert_eq!(
            CreateTest::from_json(br#"{"preset": "soak"}"#),
            Err(ApiError::MissingField("runnableFile"))
        );
        assert!(matches!(
            CreateTest::from_json(b"{"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(
            matches!(CreateTest::from_json(b""), Err(ApiError::MalformedJson(m)) if m.contains("empty"))
        );
        assert!(
            matches!(CreateTest::from_json(b"[1]"), Err(ApiError::MalformedJson(m)) if m.contains("array"))
        );
        assert!(matches!(
            CreateTest::from_json(br#"{"preset": 5, "runnableFile": "a"}"#),
            Err(ApiError::InvalidField { field: "preset", problem }) if problem.contains("number")
        ));
    }
}
