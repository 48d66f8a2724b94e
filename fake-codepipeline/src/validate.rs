//! Model-driven validation of a request's JSON input, as an AWS (Coral) service does it before the operation
//! runs (`docs/protocol.md`, "Wire": validation is the server's job; clients barely validate).
//!
//! Two kinds of failure, in this order:
//! - a value of the wrong JSON type (a string where a number is expected, a fractional integer, a timestamp
//!   given as text, a body that is not an object) is a deserialization failure: [`InputError::Serialization`],
//!   answered as `SerializationException`. The first one found ends validation.
//! - constraint violations (`required`, `length`, `pattern`, `range`, enum values) are collected, at most
//!   [`MAX_ERRORS`], into one [`InputError::Validation`] message in Coral's format, answered as
//!   `ValidationException`:
//!   `2 validation errors detected: Value '150' at 'executionDetails.percentComplete' failed to satisfy
//!   constraint: Member must have value less than or equal to 100; Value null at 'jobId' failed to satisfy
//!   constraint: Member must not be null`.
//!
//! Rules:
//! - Members the model does not know are ignored (SDKs may be newer than the model); `null` for a member is
//!   the same as leaving it out. A required member that has a `smithy.api#default` is never missing (the
//!   default applies).
//! - Paths: top-level members by name (`jobId`), nested members dotted (`executionDetails.percentComplete`),
//!   list items `name.N.member` with N counted from 1 (`stages.1.member.actions.2.member.name`, as Coral
//!   writes them), map values `name.KEY.member` and map keys `name.KEY.key` (`queryParam.ProjectName.member`).
//! - Values are shown as `Value '...'` (`Value null` when missing). A value longer than 200 characters shows
//!   its first 50 characters followed by `...`. A sensitive value (`smithy.api#sensitive` on the member, on
//!   its target, or on an enclosing shape) shows as `Value '***'`; so does a list or map that holds sensitive
//!   values. Lists render as `[a, b]`, objects as `{k=v}` (Java's `toString`, as Coral does).
//! - String lengths count characters (Unicode scalar values); list and map lengths count items and entries.
//! - Patterns are searched, not implicitly anchored (Smithy semantics); a pattern the `regex` crate cannot
//!   compile is skipped (logged once by the model).
//! - An operation the model does not define is not validated (`Ok`): the wire layer answers
//!   `UnknownOperationException` before validation.

use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

use crate::model::{Constraints, Kind, Member, Model, ShapeIdx};

/// At most this many violations are reported; validation stops collecting after that (as AWS caps its list).
pub const MAX_ERRORS: usize = 10;
/// Values rendered longer than this many characters are shortened in messages.
const LONG_VALUE_CHARS: usize = 200;
/// How many characters of a long value a message keeps.
const SHORT_VALUE_CHARS: usize = 50;
/// Map keys longer than this are shortened in paths.
const LONG_KEY_CHARS: usize = 100;

/// Why a request's input was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InputError {
    /// Wrong JSON type for a member (string where a number is expected, etc.) or a body that is not an object
    /// -> SerializationException
    #[error("{0}")]
    Serialization(String),
    /// Constraint violations -> ValidationException, message in AWS's Coral format
    #[error("{0}")]
    Validation(String),
}

impl Model {
    /// Validate `input` (the parsed request body; an empty body is `{}`) against `operation`'s input shape.
    pub fn validate_input(&self, operation: &str, input: &Value) -> Result<(), InputError> {
        let Some(body) = input.as_object() else {
            return Err(InputError::Serialization(
                "Request body must be a JSON object".to_string(),
            ));
        };
        let Some(input_shape) = self.operations.get(operation).and_then(|op| op.input) else {
            return Ok(());
        };
        let mut walker = Walker {
            model: self,
            errors: Vec::new(),
        };
        match &self.shapes[input_shape].kind {
            Kind::Structure(members) => walker
                .structure(members, body, &Path::Root, false)
                .map_err(InputError::Serialization)?,
            // An input is always a structure; anything else is validated as a value.
            _ => walker
                .value(
                    input_shape,
                    &self.shapes[input_shape].constraints,
                    input,
                    &Path::Root,
                    false,
                )
                .map_err(InputError::Serialization)?,
        }
        if walker.errors.is_empty() {
            return Ok(());
        }
        let n = walker.errors.len();
        let plural = if n == 1 { "error" } else { "errors" };
        Err(InputError::Validation(format!(
            "{n} validation {plural} detected: {}",
            walker.errors.join("; ")
        )))
    }
}

/// Where a value sits in the input, built on the stack and rendered only for messages.
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    /// A list item, 0-based here, 1-based when rendered.
    Item(&'a Path<'a>, usize),
    MapKey(&'a Path<'a>, &'a str),
    MapValue(&'a Path<'a>, &'a str),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn prefix(f: &mut fmt::Formatter<'_>, parent: &Path<'_>) -> fmt::Result {
            match parent {
                Path::Root => Ok(()),
                p => write!(f, "{p}."),
            }
        }
        match self {
            Path::Root => Ok(()),
            Path::Member(parent, name) => {
                prefix(f, parent)?;
                f.write_str(name)
            }
            Path::Item(parent, i) => {
                prefix(f, parent)?;
                write!(f, "{}.member", i + 1)
            }
            Path::MapKey(parent, key) => {
                prefix(f, parent)?;
                write!(f, "{}.key", ShortKey(key))
            }
            Path::MapValue(parent, key) => {
                prefix(f, parent)?;
                write!(f, "{}.member", ShortKey(key))
            }
        }
    }
}

/// A map key as a path segment, shortened if huge.
struct ShortKey<'a>(&'a str);

impl fmt::Display for ShortKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= LONG_KEY_CHARS || self.0.chars().count() <= LONG_KEY_CHARS {
            f.write_str(self.0)
        } else {
            f.write_str(first_chars(self.0, SHORT_VALUE_CHARS))?;
            f.write_str("...")
        }
    }
}

/// A constraint a value failed, rendered in Coral's words.
enum Violation<'a> {
    NotNull,
    MinLength(u64),
    MaxLength(u64),
    Pattern(&'a str),
    MinValue(f64),
    MaxValue(f64),
    Enum(&'a str),
}

impl fmt::Display for Violation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotNull => f.write_str("Member must not be null"),
            Violation::MinLength(n) => {
                write!(f, "Member must have length greater than or equal to {n}")
            }
            Violation::MaxLength(n) => {
                write!(f, "Member must have length less than or equal to {n}")
            }
            Violation::Pattern(p) => {
                write!(f, "Member must satisfy regular expression pattern: {p}")
            }
            Violation::MinValue(n) => write!(
                f,
                "Member must have value greater than or equal to {}",
                Num(*n)
            ),
            Violation::MaxValue(n) => write!(
                f,
                "Member must have value less than or equal to {}",
                Num(*n)
            ),
            Violation::Enum(set) => write!(f, "Member must satisfy enum value set: {set}"),
        }
    }
}

/// A bound as the model wrote it: `100`, not `100.0`.
struct Num(f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.fract() == 0.0 && self.0.abs() < 1e18 {
            write!(f, "{}", self.0 as i64)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// The value a violation is about.
enum Shown<'a> {
    Missing,
    Json(&'a Value),
    Text(&'a str),
}

struct Walker<'m> {
    model: &'m Model,
    /// Rendered violations, at most [`MAX_ERRORS`].
    errors: Vec<String>,
}

/// A deserialization failure message (ends validation).
type Fatal = String;

impl Walker<'_> {
    fn full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    /// Record a violation; `hidden` shows the value as `***`.
    fn violation(&mut self, value: Shown<'_>, hidden: bool, path: &Path<'_>, what: Violation<'_>) {
        if self.full() {
            return;
        }
        let shown = match value {
            Shown::Missing | Shown::Json(Value::Null) => "null".to_string(),
            _ if hidden => "'***'".to_string(),
            Shown::Json(v) => format!("'{}'", render_value(v)),
            Shown::Text(s) => format!("'{}'", shortened(s)),
        };
        self.errors.push(format!(
            "Value {shown} at '{path}' failed to satisfy constraint: {what}"
        ));
    }

    fn structure(
        &mut self,
        members: &[Member],
        object: &Map<String, Value>,
        path: &Path<'_>,
        hidden: bool,
    ) -> Result<(), Fatal> {
        for member in members {
            let member_path = Path::Member(path, &member.name);
            match object.get(&member.name) {
                None | Some(Value::Null) => {
                    if member.required && !member.has_default {
                        self.violation(Shown::Missing, false, &member_path, Violation::NotNull);
                    }
                }
                Some(v) => self.member(member, v, &member_path, hidden)?,
            }
        }
        Ok(())
    }

    fn member(
        &mut self,
        member: &Member,
        value: &Value,
        path: &Path<'_>,
        hidden: bool,
    ) -> Result<(), Fatal> {
        let hidden = hidden || member.constraints.sensitive;
        self.value(member.target, &member.constraints, value, path, hidden)
    }

    /// Check a present, non-null value of shape `target` with effective constraints `c`.
    fn value(
        &mut self,
        target: ShapeIdx,
        c: &Constraints,
        value: &Value,
        path: &Path<'_>,
        hidden: bool,
    ) -> Result<(), Fatal> {
        let shape = &self.model.shapes[target];
        match &shape.kind {
            Kind::Structure(members) => {
                let object = value
                    .as_object()
                    .ok_or_else(|| type_error(path, "an object", value))?;
                self.structure(members, object, path, hidden || shape.constraints.sensitive)
            }
            Kind::Union(members) => {
                let object = value
                    .as_object()
                    .ok_or_else(|| type_error(path, "an object", value))?;
                let set = members
                    .iter()
                    .filter(|m| object.get(&m.name).is_some_and(|v| !v.is_null()))
                    .count();
                if set != 1 {
                    return Err(format!(
                        "Cannot deserialize '{path}': a union must have exactly one member set, got {set}"
                    ));
                }
                self.structure(members, object, path, hidden || shape.constraints.sensitive)
            }
            Kind::List(item) => {
                let items = value
                    .as_array()
                    .ok_or_else(|| type_error(path, "an array", value))?;
                let hide_all = hidden || shape.contains_sensitive || item.constraints.sensitive;
                self.length(c, items.len(), value, hide_all, path);
                for (i, v) in items.iter().enumerate() {
                    let item_path = Path::Item(path, i);
                    if v.is_null() {
                        self.violation(Shown::Missing, false, &item_path, Violation::NotNull);
                    } else {
                        self.member(item, v, &item_path, hidden)?;
                    }
                }
                Ok(())
            }
            Kind::Map { key, value: val } => {
                let entries = value
                    .as_object()
                    .ok_or_else(|| type_error(path, "an object", value))?;
                let hide_all = hidden
                    || shape.contains_sensitive
                    || key.constraints.sensitive
                    || val.constraints.sensitive
                    || self.model.shapes[key.target].contains_sensitive;
                self.length(c, entries.len(), value, hide_all, path);
                for (k, v) in entries {
                    // Keys are strings in JSON; check them against the key shape's constraints.
                    self.string(
                        &key.constraints,
                        k,
                        &Path::MapKey(path, k),
                        hidden || key.constraints.sensitive,
                    );
                    let value_path = Path::MapValue(path, k);
                    if v.is_null() {
                        self.violation(Shown::Missing, false, &value_path, Violation::NotNull);
                    } else {
                        self.member(val, v, &value_path, hidden)?;
                    }
                }
                Ok(())
            }
            Kind::String => {
                let s = value
                    .as_str()
                    .ok_or_else(|| type_error(path, "a string", value))?;
                self.string(c, s, path, hidden);
                Ok(())
            }
            Kind::Integer { min, max } => {
                let n = integer(value).map_err(|expected| type_error(path, expected, value))?;
                if n < *min || n > *max {
                    return Err(format!(
                        "Cannot deserialize '{path}': the number is out of range for its type"
                    ));
                }
                self.range(c, n as f64, value, hidden, path);
                if let Some(set) = c.enum_set {
                    let set = &self.model.enums[set];
                    let text = n.to_string();
                    if !set.values.contains(&text) {
                        self.violation(
                            Shown::Json(value),
                            hidden,
                            path,
                            Violation::Enum(&set.display),
                        );
                    }
                }
                Ok(())
            }
            Kind::Float => {
                let n = value
                    .as_f64()
                    .ok_or_else(|| type_error(path, "a number", value))?;
                self.range(c, n, value, hidden, path);
                Ok(())
            }
            Kind::Boolean => {
                if value.is_boolean() {
                    Ok(())
                } else {
                    Err(type_error(path, "a boolean", value))
                }
            }
            Kind::Timestamp => {
                if value.is_number() {
                    Ok(())
                } else {
                    Err(type_error(path, "a number (epoch seconds)", value))
                }
            }
            Kind::Blob => {
                if value.is_string() {
                    Ok(())
                } else {
                    Err(type_error(path, "a base64 string", value))
                }
            }
            Kind::Document | Kind::Unit | Kind::NotData => Ok(()),
        }
    }

    /// `length`, `pattern` and enum checks on a string.
    fn string(&mut self, c: &Constraints, s: &str, path: &Path<'_>, hidden: bool) {
        if self.full() {
            return;
        }
        if let Some(bounds) = c.length {
            let len = s.chars().count() as u64;
            if let Some(min) = bounds.min.filter(|&min| len < min) {
                self.violation(Shown::Text(s), hidden, path, Violation::MinLength(min));
            }
            if let Some(max) = bounds.max.filter(|&max| len > max) {
                self.violation(Shown::Text(s), hidden, path, Violation::MaxLength(max));
            }
        }
        if let Some(p) = c.pattern {
            let pattern = &self.model.patterns[p];
            if let Some(re) = pattern.regex()
                && !re.is_match(s)
            {
                self.violation(
                    Shown::Text(s),
                    hidden,
                    path,
                    Violation::Pattern(&pattern.source),
                );
            }
        }
        if let Some(set) = c.enum_set {
            let set = &self.model.enums[set];
            if !set.values.iter().any(|v| v == s) {
                self.violation(Shown::Text(s), hidden, path, Violation::Enum(&set.display));
            }
        }
    }

    /// `length` on a list or map (`len` items or entries).
    fn length(
        &mut self,
        c: &Constraints,
        len: usize,
        value: &Value,
        hidden: bool,
        path: &Path<'_>,
    ) {
        let Some(bounds) = c.length else { return };
        let len = len as u64;
        if let Some(min) = bounds.min.filter(|&min| len < min) {
            self.violation(Shown::Json(value), hidden, path, Violation::MinLength(min));
        }
        if let Some(max) = bounds.max.filter(|&max| len > max) {
            self.violation(Shown::Json(value), hidden, path, Violation::MaxLength(max));
        }
    }

    /// `range` on a number.
    fn range(&mut self, c: &Constraints, n: f64, value: &Value, hidden: bool, path: &Path<'_>) {
        let Some(bounds) = c.range else { return };
        if let Some(min) = bounds.min.filter(|&min| n < min) {
            self.violation(Shown::Json(value), hidden, path, Violation::MinValue(min));
        }
        if let Some(max) = bounds.max.filter(|&max| n > max) {
            self.violation(Shown::Json(value), hidden, path, Violation::MaxValue(max));
        }
    }
}

/// A JSON number without a fraction, or what was expected instead.
fn integer(value: &Value) -> Result<i128, &'static str> {
    let Value::Number(n) = value else {
        return Err("a number");
    };
    if let Some(i) = n.as_i64() {
        return Ok(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Ok(u.into());
    }
    match n.as_f64() {
        // 1.0 and 1e3 are integers written as floats; Jackson and the SDKs accept them.
        Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e38 => Ok(f as i128),
        _ => Err("an integer"),
    }
}

fn type_error(path: &Path<'_>, expected: &str, got: &Value) -> Fatal {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => "a number with a fraction",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("Cannot deserialize '{path}': expected {expected}, got {got}")
}

/// A value as Coral shows it in a message, shortened if long.
fn render_value(value: &Value) -> String {
    let mut out = Bounded::default();
    // An Err only means the rendering went past the limit and stopped.
    let complete = write_value(&mut out, value).is_ok();
    if complete && out.chars <= LONG_VALUE_CHARS {
        out.text
    } else {
        format!("{}...", first_chars(&out.text, SHORT_VALUE_CHARS))
    }
}

/// `s`, or its first characters followed by `...` if it is long.
fn shortened(s: &str) -> String {
    if s.len() <= LONG_VALUE_CHARS || s.chars().count() <= LONG_VALUE_CHARS {
        s.to_string()
    } else {
        format!("{}...", first_chars(s, SHORT_VALUE_CHARS))
    }
}

/// The first `n` characters of `s`.
fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// Java-`toString`-like rendering: strings raw, lists `[a, b]`, objects `{k=v, k2=v2}`.
fn write_value(out: &mut Bounded, value: &Value) -> fmt::Result {
    match value {
        Value::Null => out.write_str("null"),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Number(n) => write!(out, "{n}"),
        Value::String(s) => out.write_str(s),
        Value::Array(items) => {
            out.write_char('[')?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write_value(out, item)?;
            }
            out.write_char(']')
        }
        Value::Object(entries) => {
            out.write_char('{')?;
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                out.write_str(k)?;
                out.write_char('=')?;
                write_value(out, v)?;
            }
            out.write_char('}')
        }
    }
}

/// A string writer that refuses to grow past the long-value limit, so a 1 MiB value never costs 1 MiB.
#[derive(Default)]
struct Bounded {
    text: String,
    chars: usize,
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LONG_VALUE_CHARS + 1 - self.chars.min(LONG_VALUE_CHARS + 1);
        let piece = first_chars(s, room);
        self.text.push_str(piece);
        self.chars += piece.chars().count();
        if piece.len() < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UUID: &str = "0123abcd-0123-4567-89ab-0123456789ab";

    fn model() -> &'static Model {
        Model::get()
    }

    fn validate(op: &str, input: Value) -> Result<(), InputError> {
        model().validate_input(op, &input)
    }

    fn validation(op: &str, input: Value) -> String {
        match validate(op, input) {
            Err(InputError::Validation(m)) => m,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn serialization(op: &str, input: Value) -> String {
        match validate(op, input) {
            Err(InputError::Serialization(m)) => m,
            other => panic!("expected a serialization error, got {other:?}"),
        }
    }

    fn custom_type() -> Value {
        json!({"category": "Build", "owner": "Custom", "provider": "Load-test_1", "version": "1"})
    }

    fn third_party_type() -> Value {
        json!({"category": "Test", "owner": "ThirdParty", "provider": "Apica", "version": "1"})
    }

    /// A valid minimal input for each job-worker operation, and its required members.
    fn job_worker_minimal() -> Vec<(&'static str, Value, Vec<&'static str>)> {
        let failure = json!({"type": "JobFailed", "message": "the test failed"});
        vec![
            (
                "PollForJobs",
                json!({"actionTypeId": custom_type()}),
                vec!["actionTypeId"],
            ),
            (
                "PollForThirdPartyJobs",
                json!({"actionTypeId": third_party_type()}),
                vec!["actionTypeId"],
            ),
            (
                "AcknowledgeJob",
                json!({"jobId": UUID, "nonce": "3"}),
                vec!["jobId", "nonce"],
            ),
            (
                "AcknowledgeThirdPartyJob",
                json!({"jobId": "job-1", "nonce": "3", "clientToken": "tok"}),
                vec!["jobId", "nonce", "clientToken"],
            ),
            ("GetJobDetails", json!({"jobId": UUID}), vec!["jobId"]),
            (
                "GetThirdPartyJobDetails",
                json!({"jobId": "job-1", "clientToken": "tok"}),
                vec!["jobId", "clientToken"],
            ),
            ("PutJobSuccessResult", json!({"jobId": UUID}), vec!["jobId"]),
            (
                "PutJobFailureResult",
                json!({"jobId": UUID, "failureDetails": failure}),
                vec!["jobId", "failureDetails"],
            ),
            (
                "PutThirdPartyJobSuccessResult",
                json!({"jobId": "job-1", "clientToken": "tok"}),
                vec!["jobId", "clientToken"],
            ),
            (
                "PutThirdPartyJobFailureResult",
                json!({"jobId": "job-1", "clientToken": "tok", "failureDetails": failure}),
                vec!["jobId", "clientToken", "failureDetails"],
            ),
        ]
    }

    #[test]
    fn job_worker_operations_accept_minimal_and_name_missing_required_members() {
        for (op, input, required) in job_worker_minimal() {
            assert_eq!(validate(op, input.clone()), Ok(()), "{op}");
            for member in required {
                let mut without = input.clone();
                without.as_object_mut().unwrap().remove(member);
                assert_eq!(
                    validation(op, without.clone()),
                    format!(
                        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: \
                         Member must not be null"
                    ),
                    "{op} without {member}"
                );
                // An explicit null is the same as leaving the member out.
                without[member] = Value::Null;
                assert!(validation(op, without).contains(&format!("Value null at '{member}'")));
            }
        }
    }

    #[test]
    fn empty_input_reports_every_missing_member() {
        assert_eq!(
            validation("PutThirdPartyJobFailureResult", json!({})),
            "3 validation errors detected: \
             Value null at 'jobId' failed to satisfy constraint: Member must not be null; \
             Value null at 'clientToken' failed to satisfy constraint: Member must not be null; \
             Value null at 'failureDetails' failed to satisfy constraint: Member must not be null"
        );
        assert_eq!(
            validation("PollForJobs", json!({"actionTypeId": {}})),
            "4 validation errors detected: \
             Value null at 'actionTypeId.category' failed to satisfy constraint: Member must not be null; \
             Value null at 'actionTypeId.owner' failed to satisfy constraint: Member must not be null; \
             Value null at 'actionTypeId.provider' failed to satisfy constraint: Member must not be null; \
             Value null at 'actionTypeId.version' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn percent_complete_range() {
        let with = |p: Value| json!({"jobId": UUID, "executionDetails": {"percentComplete": p}});
        assert_eq!(
            validation("PutJobSuccessResult", with(json!(150))),
            "1 validation error detected: Value '150' at 'executionDetails.percentComplete' failed to satisfy \
             constraint: Member must have value less than or equal to 100"
        );
        assert_eq!(
            validation("PutJobSuccessResult", with(json!(-1))),
            "1 validation error detected: Value '-1' at 'executionDetails.percentComplete' failed to satisfy \
             constraint: Member must have value greater than or equal to 0"
        );
        for ok in [0, 42, 100] {
            assert_eq!(validate("PutJobSuccessResult", with(json!(ok))), Ok(()));
        }
        // An integral float is still an integer.
        assert_eq!(validate("PutJobSuccessResult", with(json!(50.0))), Ok(()));
        let third_party =
            json!({"jobId": "j", "clientToken": "t", "executionDetails": {"percentComplete": 101}});
        assert!(
            validation("PutThirdPartyJobSuccessResult", third_party)
                .contains("less than or equal to 100")
        );
    }

    #[test]
    fn max_batch_size_minimum() {
        let msg = validation(
            "PollForJobs",
            json!({"actionTypeId": custom_type(), "maxBatchSize": 0}),
        );
        assert_eq!(
            msg,
            "1 validation error detected: Value '0' at 'maxBatchSize' failed to satisfy constraint: \
             Member must have value greater than or equal to 1"
        );
        let ok = json!({"actionTypeId": third_party_type(), "maxBatchSize": 1000});
        assert_eq!(validate("PollForThirdPartyJobs", ok), Ok(()));
    }

    #[test]
    fn continuation_token_length() {
        let with = |n: usize| json!({"jobId": UUID, "continuationToken": "t".repeat(n)});
        assert_eq!(validate("PutJobSuccessResult", with(2048)), Ok(()));
        assert_eq!(validate("PutJobSuccessResult", with(1)), Ok(()));
        let msg = validation("PutJobSuccessResult", with(2049));
        assert!(
            msg.starts_with(&format!(
                "1 validation error detected: Value '{}...' at 'continuationToken'",
                "t".repeat(50)
            )),
            "{msg}"
        );
        assert!(
            msg.ends_with("Member must have length less than or equal to 2048"),
            "{msg}"
        );
        assert!(
            validation("PutJobSuccessResult", with(0))
                .ends_with("Member must have length greater than or equal to 1")
        );
        let third_party =
            json!({"jobId": "j", "clientToken": "t", "continuationToken": "t".repeat(2049)});
        assert!(
            validation("PutThirdPartyJobSuccessResult", third_party)
                .contains("at 'continuationToken'")
        );
        // Length counts characters, not bytes: 2048 two-byte characters are fine.
        assert_eq!(
            validate(
                "PutJobSuccessResult",
                json!({"jobId": UUID, "continuationToken": "é".repeat(2048)})
            ),
            Ok(())
        );
    }

    #[test]
    fn query_param_entries_and_value_pattern() {
        let poll = |q: Value| json!({"actionTypeId": custom_type(), "queryParam": q});
        assert_eq!(
            validate("PollForJobs", poll(json!({"ProjectName": "my_project-1"}))),
            Ok(())
        );
        assert_eq!(validate("PollForJobs", poll(json!({}))), Ok(()));
        let msg = validation("PollForJobs", poll(json!({"A": "x", "B": "y"})));
        assert_eq!(
            msg,
            "1 validation error detected: Value '{A=x, B=y}' at 'queryParam' failed to satisfy constraint: \
             Member must have length less than or equal to 1"
        );
        let msg = validation("PollForJobs", poll(json!({"ProjectName": "my project!"})));
        assert_eq!(
            msg,
            "1 validation error detected: Value 'my project!' at 'queryParam.ProjectName.member' failed to \
             satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$"
        );
        let msg = validation("PollForJobs", poll(json!({"": "ok"})));
        assert_eq!(
            msg,
            "1 validation error detected: Value '' at 'queryParam..key' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
        );
        // Every violated constraint of one value is reported.
        let msg = validation(
            "PollForJobs",
            poll(json!({"P": format!("{}!", "a".repeat(60))})),
        );
        assert!(msg.starts_with("2 validation errors detected: "), "{msg}");
        assert!(
            msg.contains("length less than or equal to 50") && msg.contains("regular expression")
        );
    }

    #[test]
    fn custom_job_id_must_be_a_uuid() {
        let msg = validation(
            "AcknowledgeJob",
            json!({"jobId": "not-a-uuid", "nonce": "1"}),
        );
        assert_eq!(
            msg,
            "1 validation error detected: Value 'not-a-uuid' at 'jobId' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
        );
        // Upper-case hex is not in the pattern.
        let upper = UUID.to_uppercase();
        assert!(
            validation("GetJobDetails", json!({"jobId": upper})).contains("regular expression")
        );
        // Third-party job ids are free-form (1..512).
        assert_eq!(
            validate(
                "GetThirdPartyJobDetails",
                json!({"jobId": "anything", "clientToken": "t"})
            ),
            Ok(())
        );
    }

    #[test]
    fn enums() {
        let mut t = custom_type();
        t["owner"] = json!("Banana");
        assert_eq!(
            validation("PollForJobs", json!({"actionTypeId": t})),
            "1 validation error detected: Value 'Banana' at 'actionTypeId.owner' failed to satisfy constraint: \
             Member must satisfy enum value set: [AWS, ThirdParty, Custom]"
        );
        let input = json!({"jobId": UUID, "failureDetails": {"type": "Oops", "message": "m"}});
        assert_eq!(
            validation("PutJobFailureResult", input),
            "1 validation error detected: Value 'Oops' at 'failureDetails.type' failed to satisfy constraint: \
             Member must satisfy enum value set: [JobFailed, ConfigurationError, PermissionError, \
             RevisionOutOfSync, RevisionUnavailable, SystemUnavailable]"
        );
        // Enum values are case-sensitive.
        let input = json!({"jobId": "j", "clientToken": "t", "failureDetails": {"type": "jobfailed", "message": "m"}});
        assert!(validation("PutThirdPartyJobFailureResult", input).contains("enum value set"));
    }

    #[test]
    fn wrong_json_types_are_serialization_errors() {
        let poll = |n: Value| json!({"actionTypeId": custom_type(), "maxBatchSize": n});
        assert_eq!(
            serialization("PollForJobs", poll(json!("5"))),
            "Cannot deserialize 'maxBatchSize': expected a number, got a string"
        );
        assert_eq!(
            serialization("PollForJobs", poll(json!(1.5))),
            "Cannot deserialize 'maxBatchSize': expected an integer, got a number with a fraction"
        );
        assert!(serialization("PollForJobs", poll(json!(1u64 << 40))).contains("out of range"));
        assert_eq!(
            serialization("AcknowledgeJob", json!({"jobId": 7, "nonce": "1"})),
            "Cannot deserialize 'jobId': expected a string, got a number"
        );
        assert_eq!(
            serialization("PollForJobs", json!({"actionTypeId": "Build"})),
            "Cannot deserialize 'actionTypeId': expected an object, got a string"
        );
        let revision = |created: Value| json!({"jobId": UUID, "currentRevision": {"revision": "r", "changeIdentifier": "c", "created": created}});
        assert_eq!(
            validate("PutJobSuccessResult", revision(json!(1577836800.5))),
            Ok(())
        );
        assert_eq!(
            serialization(
                "PutJobSuccessResult",
                revision(json!("2020-01-01T00:00:00Z"))
            ),
            "Cannot deserialize 'currentRevision.created': expected a number (epoch seconds), got a string"
        );
        let create = |v: Value| {
            let mut input = create_custom_action_type();
            input["configurationProperties"] =
                json!([{"name": "P", "required": true, "key": v, "secret": false}]);
            input
        };
        assert_eq!(
            serialization("CreateCustomActionType", create(json!("yes"))),
            "Cannot deserialize 'configurationProperties.1.member.key': expected a boolean, got a string"
        );
        // A type error wins over constraint violations found before it.
        let input = json!({"actionTypeId": {"owner": "Banana"}, "maxBatchSize": "x"});
        assert!(matches!(
            validate("PollForJobs", input),
            Err(InputError::Serialization(_))
        ));
    }

    #[test]
    fn body_must_be_an_object() {
        for body in [json!([]), json!("x"), json!(1), Value::Null, json!(true)] {
            assert_eq!(
                validate("PollForJobs", body.clone()),
                Err(InputError::Serialization(
                    "Request body must be a JSON object".into()
                )),
                "{body}"
            );
        }
    }

    #[test]
    fn unknown_members_are_ignored() {
        let input = json!({"jobId": UUID, "futureMember": {"x": [1, 2]}, "__type": "x",
                           "executionDetails": {"newField": "z", "percentComplete": 5}});
        assert_eq!(validate("PutJobSuccessResult", input), Ok(()));
    }

    #[test]
    fn huge_values_give_short_messages() {
        let huge = "x".repeat(1 << 20);
        let msg = validation(
            "PutJobSuccessResult",
            json!({"jobId": UUID, "continuationToken": huge}),
        );
        assert!(msg.len() < 300, "{} bytes", msg.len());
        assert!(msg.contains(&format!(
            "Value '{}...' at 'continuationToken'",
            "x".repeat(50)
        )));
        // A huge map key is shortened in the path too.
        let key = "k".repeat(1 << 20);
        let msg = validation(
            "PollForJobs",
            json!({"actionTypeId": custom_type(), "queryParam": {key: "v"}}),
        );
        assert!(msg.len() < 600, "{} bytes", msg.len());
        // A huge list is shortened as a whole.
        let mut input = create_custom_action_type();
        let props: Vec<Value> = (0..20_000)
            .map(|i| json!({"name": format!("p{i}"), "required": false, "key": false, "secret": false}))
            .collect();
        input["configurationProperties"] = Value::Array(props);
        let msg = validation("CreateCustomActionType", input);
        assert!(msg.len() < 400, "{msg}");
        assert!(
            msg.starts_with("1 validation error detected: Value '[{"),
            "{msg}"
        );
        assert!(
            msg.ends_with("Member must have length less than or equal to 10"),
            "{msg}"
        );
    }

    #[test]
    fn values_of_exactly_the_limit_are_shown_whole() {
        assert_eq!(render_value(&json!("y".repeat(200))), "y".repeat(200));
        assert_eq!(
            render_value(&json!("y".repeat(201))),
            format!("{}...", "y".repeat(50))
        );
        assert_eq!(
            render_value(&json!([1, "a", {"k": true}])),
            "[1, a, {k=true}]"
        );
        assert_eq!(
            render_value(&json!(vec!["ab"; 100])),
            format!("{}...", &format!("[{}", vec!["ab"; 100].join(", "))[..50])
        );
    }

    #[test]
    fn sensitive_values_are_hidden() {
        // No input shape of the model carries a sensitive member (they are outputs), so use a small model.
        let model = Model::parse(
            r#"{"smithy":"2.0","shapes":{
            "ex#Op":{"type":"operation","input":{"target":"ex#In"}},
            "ex#In":{"type":"structure","members":{
                "secret":{"target":"ex#Secret"},
                "marked":{"target":"ex#Short","traits":{"smithy.api#sensitive":{}}},
                "creds":{"target":"ex#Creds"},
                "list":{"target":"ex#CredsList"},
                "plain":{"target":"ex#Short"}}},
            "ex#Secret":{"type":"string","traits":{"smithy.api#sensitive":{},"smithy.api#length":{"max":3}}},
            "ex#Short":{"type":"string","traits":{"smithy.api#length":{"max":3}}},
            "ex#Creds":{"type":"structure","members":{"key":{"target":"ex#Short"}},
                        "traits":{"smithy.api#sensitive":{}}},
            "ex#CredsList":{"type":"list","member":{"target":"ex#Creds"},"traits":{"smithy.api#length":{"max":1}}}
        }}"#,
        )
        .unwrap();
        let input = json!({"secret": "hunter2", "marked": "hunter3", "creds": {"key": "hunter4"},
                           "list": [{"key": "a"}, {"key": "b"}], "plain": "visible"});
        let Err(InputError::Validation(msg)) = model.validate_input("Op", &input) else {
            panic!()
        };
        assert!(!msg.contains("hunter"), "{msg}");
        assert!(msg.starts_with("5 validation errors detected: "), "{msg}");
        assert!(msg.contains("Value '***' at 'secret'"), "{msg}");
        assert!(msg.contains("Value '***' at 'marked'"), "{msg}");
        assert!(msg.contains("Value '***' at 'creds.key'"), "{msg}");
        assert!(msg.contains("Value '***' at 'list'"), "{msg}");
        assert!(msg.contains("Value 'visible' at 'plain'"), "{msg}");
    }

    #[test]
    fn unions_need_exactly_one_member() {
        let model = Model::parse(
            r#"{"smithy":"2.0","shapes":{
            "ex#Op":{"type":"operation","input":{"target":"ex#In"}},
            "ex#In":{"type":"structure","members":{"u":{"target":"ex#U"},"d":{"target":"smithy.api#Document"}}},
            "ex#U":{"type":"union","members":{"a":{"target":"smithy.api#String"},"b":{"target":"smithy.api#Integer"}}}
        }}"#,
        )
        .unwrap();
        assert_eq!(
            model.validate_input("Op", &json!({"u": {"a": "x"}, "d": [1, {"z": null}]})),
            Ok(())
        );
        assert_eq!(
            model.validate_input("Op", &json!({"u": {"b": 1, "a": null}})),
            Ok(())
        );
        assert!(matches!(
            model.validate_input("Op", &json!({"u": {"a": "x", "b": 1}})),
            Err(InputError::Serialization(m)) if m.contains("exactly one member set, got 2")
        ));
        assert!(matches!(
            model.validate_input("Op", &json!({"u": {}})),
            Err(InputError::Serialization(_))
        ));
        assert!(matches!(
            model.validate_input("Op", &json!({"u": {"b": "1"}})),
            Err(InputError::Serialization(_))
        ));
    }

    #[test]
    fn errors_are_capped() {
        let props: Vec<Value> = (0..30).map(|_| json!({})).collect();
        let mut input = create_custom_action_type();
        input["configurationProperties"] = Value::Array(props);
        let msg = validation("CreateCustomActionType", input);
        assert!(
            msg.starts_with(&format!("{MAX_ERRORS} validation errors detected: ")),
            "{msg}"
        );
        assert_eq!(
            msg.matches("failed to satisfy constraint").count(),
            MAX_ERRORS
        );
        assert!(
            msg.contains("at 'configurationProperties.1.member.name'"),
            "{msg}"
        );
    }

    fn create_custom_action_type() -> Value {
        json!({
            "category": "Test",
            "provider": "ApicaLoadTest",
            "version": "1",
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
        })
    }

    fn create_pipeline() -> Value {
        json!({"pipeline": {
            "name": "load-test.pipeline@1",
            "roleArn": "arn:aws:iam::123456789012:role/CodePipelineRole",
            "stages": [{
                "name": "Test",
                "actions": [{"name": "LoadTest", "actionTypeId": custom_type()}],
            }],
        }})
    }

    #[test]
    fn create_custom_action_type_and_create_pipeline() {
        assert_eq!(
            validate("CreateCustomActionType", create_custom_action_type()),
            Ok(())
        );
        assert_eq!(validate("CreatePipeline", create_pipeline()), Ok(()));

        // A fuller custom action type, as the project's setup creates it.
        let mut full = create_custom_action_type();
        full["settings"] =
            json!({"executionUrlTemplate": "https://x/{Config:ProjectName}/{ExternalExecutionId}"});
        full["configurationProperties"] = json!([
            {"name": "ProjectName", "required": true, "key": true, "secret": false, "queryable": true,
             "description": "d", "type": "String"},
            // Required booleans that have a model default may be left out (some SDKs omit false).
            {"name": "ApiToken", "secret": true},
        ]);
        full["tags"] = json!([{"key": "team", "value": "perf"}]);
        assert_eq!(validate("CreateCustomActionType", full), Ok(()));

        let mut bad = create_custom_action_type();
        bad["inputArtifactDetails"]["maximumCount"] = json!(6);
        bad["category"] = json!("Testing");
        let msg = validation("CreateCustomActionType", bad);
        assert!(
            msg.starts_with("2 validation errors detected: Value 'Testing' at 'category'"),
            "{msg}"
        );
        assert!(msg.contains(
            "Value '6' at 'inputArtifactDetails.maximumCount' failed to satisfy constraint: \
                              Member must have value less than or equal to 5"
        ));

        let mut bad = create_pipeline();
        bad["pipeline"]["stages"][0]["actions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "bad name", "actionTypeId": {}}));
        bad["pipeline"]["roleArn"] = json!("role");
        let msg = validation("CreatePipeline", bad);
        assert!(msg.starts_with("6 validation errors detected: "), "{msg}");
        assert!(msg.contains("Value 'role' at 'pipeline.roleArn' failed to satisfy constraint: Member must satisfy \
                              regular expression pattern: ^arn:aws(-[\\w]+)*:iam::[0-9]{12}:role/"), "{msg}");
        assert!(
            msg.contains("Value 'bad name' at 'pipeline.stages.1.member.actions.2.member.name'"),
            "{msg}"
        );
        assert!(
            msg.contains(
                "Value null at 'pipeline.stages.1.member.actions.2.member.actionTypeId.owner'"
            ),
            "{msg}"
        );
    }

    #[test]
    fn every_operation_survives_odd_inputs() {
        let model = model();
        let odd = [
            json!({}),
            json!({"jobId": [], "nonce": {}, "actionTypeId": null, "pipeline": {"stages": [null, 1]}}),
            json!({"name": "x".repeat(300), "maxResults": -5, "nextToken": "", "tags": [{}]}),
        ];
        let mut checked = 0;
        for op in model.operations() {
            for input in &odd {
                // Any answer is fine; it must not panic.
                let _ = model.validate_input(op, input);
            }
            checked += 1;
        }
        assert_eq!(checked, 43);
        assert_eq!(validate("ListPipelines", json!({})), Ok(()));
        assert_eq!(validate("ListActionTypes", json!({})), Ok(()));
        assert_eq!(validate("NoSuchOperation", json!({"anything": 1})), Ok(()));
    }

    #[test]
    fn throughput_is_comfortable() {
        let input = json!({"jobId": UUID, "continuationToken": "t".repeat(100),
                           "executionDetails": {"summary": "running", "externalExecutionId": "run-1",
                                                "percentComplete": 50},
                           "currentRevision": {"revision": "r", "changeIdentifier": "c", "created": 1}});
        let model = model();
        assert_eq!(model.validate_input("PutJobSuccessResult", &input), Ok(()));
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            model.validate_input("PutJobSuccessResult", &input).unwrap();
        }
        let elapsed = start.elapsed();
        // Debug builds included: 20,000 validations well within a second of one core.
        assert!(
            elapsed.as_secs_f64() < 1.0,
            "{n} validations took {elapsed:?}"
        );
    }
}
