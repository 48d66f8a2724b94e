//! The CodePipeline Smithy model, embedded in the binary and indexed once.
//!
//! The unmodified AWS model (`model/codepipeline-2015-07-09.smithy.json`, Smithy JSON AST 2.0) is compiled in
//! with `include_str!` and parsed on first use by [`Model::get`]. Parsing keeps only what input validation and
//! the wire layer need: every shape's kind, its members in declaration order and the constraint traits
//! (`required`, `default`, `length`, `pattern`, `range`, `enumValue`/`enum`, `sensitive`). Documentation and
//! every other trait are skipped.
//!
//! Shapes live in a `Vec` addressed by index; a `HashMap` maps shape ids to indexes. Member targets are resolved
//! to indexes at load time, and each member carries its *effective* constraints: the target shape's traits with
//! the member's own traits laid over them, so validation never has to look at two places. Smithy prelude shapes
//! (`smithy.api#String`, `smithy.api#Integer`, `smithy.api#Timestamp`, ...) are not in the file and are added
//! here. A target that is neither in the file nor in the prelude is accepted as a document (anything goes) and
//! logged once at load.
//!
//! Regular expressions (`smithy.api#pattern`, ECMA 262) are deduplicated at load and compiled once, on first
//! use, after translating the ECMA-only spellings the `regex` crate reads differently (see [`ecma_to_rust`]).
//! A pattern the `regex` crate cannot compile (look-around, back-references) is logged once and not checked.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

/// The model file, compiled in: the fake never reads files at run time.
const MODEL_JSON: &str = include_str!("../model/codepipeline-2015-07-09.smithy.json");

/// Index of a shape in [`Model::shapes`].
pub(crate) type ShapeIdx = usize;

/// `smithy.api#length` (or a range on collection sizes): inclusive bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct LengthBounds {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

/// `smithy.api#range`: inclusive bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct RangeBounds {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The constraint traits that apply to a value, after member traits are laid over target traits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Constraints {
    pub length: Option<LengthBounds>,
    pub range: Option<RangeBounds>,
    /// Index into [`Model::patterns`].
    pub pattern: Option<usize>,
    /// Index into [`Model::enums`].
    pub enum_set: Option<usize>,
    /// `smithy.api#sensitive`: the value is never shown in messages.
    pub sensitive: bool,
}

impl Constraints {
    /// `self` (the target's constraints) with the traits present in `over` (the member's) replacing them.
    fn overlaid_with(self, over: Constraints) -> Constraints {
        Constraints {
            length: over.length.or(self.length),
            range: over.range.or(self.range),
            pattern: over.pattern.or(self.pattern),
            enum_set: over.enum_set.or(self.enum_set),
            sensitive: self.sensitive || over.sensitive,
        }
    }
}

/// A structure or union member, a list member, or a map key or value.
#[derive(Debug)]
pub(crate) struct Member {
    pub name: String,
    pub target: ShapeIdx,
    /// `smithy.api#required` on the member.
    pub required: bool,
    /// `smithy.api#default` on the member: an absent value takes the default, so a required member with a
    /// default is never "missing" (Smithy 2.0; some SDKs omit a value equal to the default).
    pub has_default: bool,
    /// Effective constraints (target traits overlaid with member traits).
    pub constraints: Constraints,
}

/// What kind of value a shape holds, with its members for aggregates.
#[derive(Debug)]
pub(crate) enum Kind {
    Structure(Vec<Member>),
    Union(Vec<Member>),
    List(Box<Member>),
    Map {
        key: Box<Member>,
        value: Box<Member>,
    },
    /// `string` and `enum` (the enum's values are in [`Constraints::enum_set`]).
    String,
    /// `byte`, `short`, `integer`, `long`, `bigInteger`, `intEnum`: a JSON number without a fraction, within
    /// the type's bounds.
    Integer {
        min: i128,
        max: i128,
    },
    /// `float`, `double`, `bigDecimal`.
    Float,
    Boolean,
    /// Epoch seconds as a JSON number (awsJson).
    Timestamp,
    /// Base64 text.
    Blob,
    /// Anything.
    Document,
    /// `smithy.api#Unit`.
    Unit,
    /// Operations, services, resources: not values.
    NotData,
}

/// One shape of the model.
#[derive(Debug)]
pub(crate) struct Shape {
    /// Absolute shape id, e.g. `com.amazonaws.codepipeline#JobId` (for tests and `Debug` output).
    #[cfg_attr(not(test), allow(dead_code))]
    pub id: String,
    pub kind: Kind,
    /// The shape's own constraint traits.
    pub constraints: Constraints,
    /// The shape is sensitive or holds a sensitive value somewhere inside (used to hide whole aggregates).
    pub contains_sensitive: bool,
}

/// A `smithy.api#pattern`, compiled on first use.
#[derive(Debug)]
pub(crate) struct Pattern {
    /// The pattern as the model spells it (quoted in messages).
    pub source: String,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    fn new(source: String) -> Self {
        Pattern {
            source,
            compiled: OnceLock::new(),
        }
    }

    /// The compiled pattern, or `None` (logged once) if the `regex` crate cannot express it.
    pub fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| match Regex::new(&ecma_to_rust(&self.source)) {
                Ok(re) => Some(re),
                Err(err) => {
                    tracing::warn!(
                        pattern = %self.source,
                        error = %err,
                        "smithy pattern cannot be compiled; it is not checked"
                    );
                    None
                }
            })
            .as_ref()
    }
}

/// An enum's allowed values, in model order.
#[derive(Debug)]
pub(crate) struct EnumSet {
    pub values: Vec<String>,
    /// `[A, B, C]`, as messages show it.
    pub display: String,
}

/// What the model says about an operation.
#[derive(Debug)]
pub(crate) struct OperationInfo {
    /// The input structure, or `None` for no input (`smithy.api#Unit` or absent).
    pub input: Option<ShapeIdx>,
    /// Declared error shape names (without namespace), in model order.
    pub errors: Vec<String>,
}

/// The CodePipeline model, indexed for validation.
#[derive(Debug)]
pub struct Model {
    pub(crate) shapes: Vec<Shape>,
    pub(crate) patterns: Vec<Pattern>,
    pub(crate) enums: Vec<EnumSet>,
    /// Keyed by the operation's short name, e.g. `PollForJobs`.
    pub(crate) operations: HashMap<String, OperationInfo>,
    /// Sorted operation names, for stable iteration.
    operation_names: Vec<String>,
}

/// Why a model could not be loaded (only ever seen if the embedded file is replaced by a broken one).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("model: {0}")]
    Invalid(String),
}

impl Model {
    /// The embedded CodePipeline model, parsed once.
    pub fn get() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| {
            Model::parse(MODEL_JSON).expect("the embedded CodePipeline model is valid")
        })
    }

    /// Operation names (e.g. "PollForJobs") the model defines, sorted.
    pub fn operations(&self) -> impl Iterator<Item = &str> {
        self.operation_names.iter().map(String::as_str)
    }

    pub fn has_operation(&self, name: &str) -> bool {
        self.operations.contains_key(name)
    }

    /// The operation's declared error shape names (e.g. ["InvalidNonceException", ...]), for tests and checks.
    /// Empty for an unknown operation.
    pub fn operation_errors(&self, name: &str) -> Vec<String> {
        self.operations
            .get(name)
            .map(|op| op.errors.clone())
            .unwrap_or_default()
    }

    /// The shape with absolute id `id`, if the model (or the prelude) has it.
    #[cfg(test)]
    pub(crate) fn shape_by_id(&self, id: &str) -> Option<&Shape> {
        self.shapes.iter().find(|shape| shape.id == id)
    }

    /// Parse a Smithy JSON AST model.
    pub fn parse(json: &str) -> Result<Model, ModelError> {
        let raw: RawModel = serde_json::from_str(json)?;
        Builder::default().build(raw)
    }
}

/// Translate the ECMA 262 spellings that the `regex` crate reads differently or rejects:
/// - `\d`, `\w` (and `\D`, `\W`) are ASCII in ECMA but Unicode-aware in `regex`: use the ASCII classes;
/// - `[` inside a class is a literal in ECMA but opens a nested class in `regex`: escape it;
/// - `&` and `~` inside a class are literals in ECMA but `&&`/`~~` are set operations in `regex`: escape them;
/// - `\/` (an escaped slash, common in ECMA literals) becomes `/`.
///
/// Everything else (anchors, groups, quantifiers, `\s`, `\uXXXX`, `(?<name>...)`) means the same in both.
pub(crate) fn ecma_to_rust(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 16);
    let mut in_class = false;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('d' | 'D' | 'w' | 'W')) => {
                    let name = if e.eq_ignore_ascii_case(&'d') {
                        "digit"
                    } else {
                        "word"
                    };
                    let negated = e.is_ascii_uppercase();
                    match (in_class, negated) {
                        (true, false) => out.push_str(&format!("[:{name}:]")),
                        (true, true) => out.push_str(&format!("[:^{name}:]")),
                        (false, false) => out.push_str(&format!("[[:{name}:]]")),
                        (false, true) => out.push_str(&format!("[^[:{name}:]]")),
                    }
                }
                Some('/') => out.push('/'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                // In ECMA a `]` right after `[` or `[^` closes an empty class; `regex` would read it as a
                // literal. Keep the literal reading only in the (unused) `[]`/`[^]` corner: escape it.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            '[' => out.push_str("\\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Loading.

/// Smithy prelude shapes members may target without the model file defining them.
const PRELUDE: &[(&str, PreludeKind)] = &[
    ("smithy.api#String", PreludeKind::String),
    ("smithy.api#Blob", PreludeKind::Blob),
    ("smithy.api#Boolean", PreludeKind::Boolean),
    ("smithy.api#PrimitiveBoolean", PreludeKind::Boolean),
    (
        "smithy.api#Byte",
        PreludeKind::Int(i8::MIN as i128, i8::MAX as i128),
    ),
    (
        "smithy.api#PrimitiveByte",
        PreludeKind::Int(i8::MIN as i128, i8::MAX as i128),
    ),
    (
        "smithy.api#Short",
        PreludeKind::Int(i16::MIN as i128, i16::MAX as i128),
    ),
    (
        "smithy.api#PrimitiveShort",
        PreludeKind::Int(i16::MIN as i128, i16::MAX as i128),
    ),
    (
        "smithy.api#Integer",
        PreludeKind::Int(i32::MIN as i128, i32::MAX as i128),
    ),
    (
        "smithy.api#PrimitiveInteger",
        PreludeKind::Int(i32::MIN as i128, i32::MAX as i128),
    ),
    (
        "smithy.api#Long",
        PreludeKind::Int(i64::MIN as i128, i64::MAX as i128),
    ),
    (
        "smithy.api#PrimitiveLong",
        PreludeKind::Int(i64::MIN as i128, i64::MAX as i128),
    ),
    (
        "smithy.api#BigInteger",
        PreludeKind::Int(i128::MIN, i128::MAX),
    ),
    ("smithy.api#Float", PreludeKind::Float),
    ("smithy.api#PrimitiveFloat", PreludeKind::Float),
    ("smithy.api#Double", PreludeKind::Float),
    ("smithy.api#PrimitiveDouble", PreludeKind::Float),
    ("smithy.api#BigDecimal", PreludeKind::Float),
    ("smithy.api#Timestamp", PreludeKind::Timestamp),
    ("smithy.api#Document", PreludeKind::Document),
    ("smithy.api#Unit", PreludeKind::Unit),
];

#[derive(Clone, Copy)]
enum PreludeKind {
    String,
    Blob,
    Boolean,
    Int(i128, i128),
    Float,
    Timestamp,
    Document,
    Unit,
}

impl PreludeKind {
    fn kind(self) -> Kind {
        match self {
            PreludeKind::String => Kind::String,
            PreludeKind::Blob => Kind::Blob,
            PreludeKind::Boolean => Kind::Boolean,
            PreludeKind::Int(min, max) => Kind::Integer { min, max },
            PreludeKind::Float => Kind::Float,
            PreludeKind::Timestamp => Kind::Timestamp,
            PreludeKind::Document => Kind::Document,
            PreludeKind::Unit => Kind::Unit,
        }
    }
}

#[derive(Default)]
struct Builder {
    shapes: Vec<Shape>,
    by_id: HashMap<String, ShapeIdx>,
    patterns: Vec<Pattern>,
    pattern_idx: HashMap<String, usize>,
    enums: Vec<EnumSet>,
}

impl Builder {
    fn build(mut self, raw: RawModel) -> Result<Model, ModelError> {
        for &(id, prelude) in PRELUDE {
            self.push_shape(id.to_string(), prelude.kind(), Constraints::default());
        }

        // Pass 1: give every shape of the file an index and its own constraints, so that pass 2 can resolve
        // member targets and lay member traits over target traits.
        let mut raw_shapes: Vec<(String, RawShape)> = raw.shapes.0;
        raw_shapes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut file_idx = Vec::with_capacity(raw_shapes.len());
        for (id, shape) in &raw_shapes {
            let mut constraints = self.constraints(&shape.traits);
            if shape.kind == "enum" || shape.kind == "intEnum" {
                let values = shape
                    .members
                    .0
                    .iter()
                    .map(|(name, m)| match &m.traits.enum_value {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => name.clone(),
                    })
                    .collect();
                constraints.enum_set = Some(self.enum_set(values));
            }
            let idx = match self.by_id.get(id) {
                // A file may redefine a prelude id only in theory; the file wins.
                Some(&idx) => {
                    self.shapes[idx].constraints = constraints;
                    idx
                }
                None => self.push_shape(id.clone(), Kind::NotData, constraints),
            };
            file_idx.push(idx);
        }

        // Pass 2: kinds, with members resolved.
        let mut operations = HashMap::new();
        for ((id, shape), &idx) in raw_shapes.iter().zip(&file_idx) {
            let kind = match shape.kind.as_str() {
                "structure" => Kind::Structure(self.members(&shape.members)),
                "union" => Kind::Union(self.members(&shape.members)),
                "list" | "set" => {
                    let member = shape
                        .member
                        .as_ref()
                        .ok_or_else(|| ModelError::Invalid(format!("list {id} has no member")))?;
                    Kind::List(Box::new(self.member("member", member)))
                }
                "map" => {
                    let (Some(key), Some(value)) = (&shape.key, &shape.value) else {
                        return Err(ModelError::Invalid(format!("map {id} lacks key or value")));
                    };
                    Kind::Map {
                        key: Box::new(self.member("key", key)),
                        value: Box::new(self.member("value", value)),
                    }
                }
                "string" | "enum" => Kind::String,
                "byte" => Kind::Integer {
                    min: i8::MIN.into(),
                    max: i8::MAX.into(),
                },
                "short" => Kind::Integer {
                    min: i16::MIN.into(),
                    max: i16::MAX.into(),
                },
                "integer" | "intEnum" => Kind::Integer {
                    min: i32::MIN.into(),
                    max: i32::MAX.into(),
                },
                "long" => Kind::Integer {
                    min: i64::MIN.into(),
                    max: i64::MAX.into(),
                },
                "bigInteger" => Kind::Integer {
                    min: i128::MIN,
                    max: i128::MAX,
                },
                "float" | "double" | "bigDecimal" => Kind::Float,
                "boolean" => Kind::Boolean,
                "timestamp" => Kind::Timestamp,
                "blob" => Kind::Blob,
                "document" => Kind::Document,
                "operation" => {
                    let input = match &shape.input {
                        Some(t) if t.target != "smithy.api#Unit" => Some(self.resolve(&t.target)),
                        _ => None,
                    };
                    let errors = shape
                        .errors
                        .iter()
                        .map(|t| short_name(&t.target).to_string())
                        .collect();
                    operations.insert(short_name(id).to_string(), OperationInfo { input, errors });
                    Kind::NotData
                }
                "service" | "resource" => Kind::NotData,
                other => {
                    tracing::warn!(shape = %id, kind = %other, "unknown smithy shape type; accepted as a document");
                    Kind::Document
                }
            };
            self.shapes[idx].kind = kind;
        }

        self.mark_sensitive();

        let mut operation_names: Vec<String> = operations.keys().cloned().collect();
        operation_names.sort();
        Ok(Model {
            shapes: self.shapes,
            patterns: self.patterns,
            enums: self.enums,
            operations,
            operation_names,
        })
    }

    fn push_shape(&mut self, id: String, kind: Kind, constraints: Constraints) -> ShapeIdx {
        let idx = self.shapes.len();
        self.by_id.insert(id.clone(), idx);
        self.shapes.push(Shape {
            id,
            kind,
            constraints,
            contains_sensitive: false,
        });
        idx
    }

    /// The index of `id`; an id neither in the file nor in the prelude becomes a document (logged once).
    fn resolve(&mut self, id: &str) -> ShapeIdx {
        if let Some(&idx) = self.by_id.get(id) {
            return idx;
        }
        tracing::warn!(shape = %id, "smithy shape not found in the model; accepted as a document");
        self.push_shape(id.to_string(), Kind::Document, Constraints::default())
    }

    fn members(&mut self, raw: &OrderedMap<RawMember>) -> Vec<Member> {
        raw.0.iter().map(|(name, m)| self.member(name, m)).collect()
    }

    fn member(&mut self, name: &str, raw: &RawMember) -> Member {
        let target = self.resolve(&raw.target);
        let own = self.constraints(&raw.traits);
        let constraints = self.shapes[target].constraints.overlaid_with(own);
        Member {
            name: name.to_string(),
            target,
            required: raw.traits.required.is_some(),
            has_default: raw.traits.default.is_some(),
            constraints,
        }
    }

    fn constraints(&mut self, traits: &RawTraits) -> Constraints {
        Constraints {
            length: traits.length.map(|l| LengthBounds {
                min: l.min,
                max: l.max,
            }),
            range: traits.range.map(|r| RangeBounds {
                min: r.min,
                max: r.max,
            }),
            pattern: traits.pattern.as_ref().map(|p| self.pattern(p)),
            enum_set: traits
                .old_enum
                .as_ref()
                .map(|defs| defs.iter().map(|d| d.value.clone()).collect())
                .map(|values| self.enum_set(values)),
            sensitive: traits.sensitive.is_some(),
        }
    }

    fn pattern(&mut self, source: &str) -> usize {
        if let Some(&idx) = self.pattern_idx.get(source) {
            return idx;
        }
        let idx = self.patterns.len();
        self.patterns.push(Pattern::new(source.to_string()));
        self.pattern_idx.insert(source.to_string(), idx);
        idx
    }

    fn enum_set(&mut self, values: Vec<String>) -> usize {
        let display = format!("[{}]", values.join(", "));
        self.enums.push(EnumSet { values, display });
        self.enums.len() - 1
    }

    /// `contains_sensitive` for every shape: sensitive itself, or reaches a sensitive member or shape.
    /// Iterates to a fixed point, so recursive shapes are fine.
    fn mark_sensitive(&mut self) {
        for shape in &mut self.shapes {
            shape.contains_sensitive = shape.constraints.sensitive;
        }
        loop {
            let mut changed = false;
            for idx in 0..self.shapes.len() {
                if self.shapes[idx].contains_sensitive {
                    continue;
                }
                let reaches = |m: &Member| {
                    m.constraints.sensitive || self.shapes[m.target].contains_sensitive
                };
                let sensitive = match &self.shapes[idx].kind {
                    Kind::Structure(ms) | Kind::Union(ms) => ms.iter().any(reaches),
                    Kind::List(m) => reaches(m),
                    Kind::Map { key, value } => reaches(key) || reaches(value),
                    _ => false,
                };
                if sensitive {
                    self.shapes[idx].contains_sensitive = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }
}

/// `com.amazonaws.codepipeline#JobId` -> `JobId`.
fn short_name(id: &str) -> &str {
    id.rsplit_once('#').map_or(id, |(_, name)| name)
}

// ---------------------------------------------------------------------------------------------------------
// The parts of the Smithy JSON AST that are read. Unknown fields (documentation, other traits) are skipped.

#[derive(Deserialize)]
struct RawModel {
    shapes: OrderedMap<RawShape>,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: OrderedMap<RawMember>,
    member: Option<RawMember>,
    key: Option<RawMember>,
    value: Option<RawMember>,
    input: Option<RawTarget>,
    #[serde(default)]
    errors: Vec<RawTarget>,
    #[serde(default)]
    traits: RawTraits,
}

#[derive(Deserialize)]
struct RawMember {
    target: String,
    #[serde(default)]
    traits: RawTraits,
}

#[derive(Deserialize)]
struct RawTarget {
    target: String,
}

#[derive(Default, Deserialize)]
struct RawTraits {
    #[serde(rename = "smithy.api#required")]
    required: Option<IgnoredAny>,
    #[serde(rename = "smithy.api#default")]
    default: Option<IgnoredAny>,
    #[serde(rename = "smithy.api#length")]
    length: Option<RawLength>,
    #[serde(rename = "smithy.api#range")]
    range: Option<RawRange>,
    #[serde(rename = "smithy.api#pattern")]
    pattern: Option<String>,
    #[serde(rename = "smithy.api#enumValue")]
    enum_value: Option<serde_json::Value>,
    #[serde(rename = "smithy.api#enum")]
    old_enum: Option<Vec<RawEnumDefinition>>,
    #[serde(rename = "smithy.api#sensitive")]
    sensitive: Option<IgnoredAny>,
}

#[derive(Clone, Copy, Deserialize)]
struct RawLength {
    min: Option<u64>,
    max: Option<u64>,
}

#[derive(Clone, Copy, Deserialize)]
struct RawRange {
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Deserialize)]
struct RawEnumDefinition {
    value: String,
}

/// A JSON object read into a `Vec`, keeping the file's order (members are reported in declaration order,
/// enum values are listed in declaration order).
struct OrderedMap<T>(Vec<(String, T)>);

impl<T> Default for OrderedMap<T> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrderedMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
            type Value = OrderedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<String, T>()? {
                    entries.push(entry);
                }
                Ok(OrderedMap(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const JOB_WORKER_OPS: [&str; 10] = [
        "PollForJobs",
        "PollForThirdPartyJobs",
        "AcknowledgeJob",
        "AcknowledgeThirdPartyJob",
        "GetJobDetails",
        "GetThirdPartyJobDetails",
        "PutJobSuccessResult",
        "PutJobFailureResult",
        "PutThirdPartyJobSuccessResult",
        "PutThirdPartyJobFailureResult",
    ];

    #[test]
    fn model_parses_quickly_and_once() {
        // Parse a private copy to time it (get() may already have run in another test).
        let start = Instant::now();
        let model = Model::parse(MODEL_JSON).unwrap();
        let elapsed = start.elapsed();
        assert!(elapsed.as_millis() < 500, "parsing took {elapsed:?}");
        assert_eq!(model.operations().count(), 43);
        // get() hands out the same instance every time.
        assert!(std::ptr::eq(Model::get(), Model::get()));
    }

    #[test]
    fn knows_the_job_worker_operations() {
        let model = Model::get();
        for op in JOB_WORKER_OPS {
            assert!(model.has_operation(op), "{op}");
            assert!(model.operations().any(|name| name == op), "{op}");
            assert!(
                model
                    .operation_errors(op)
                    .contains(&"ValidationException".to_string()),
                "{op}"
            );
        }
        assert!(!model.has_operation("NoSuchOperation"));
        assert!(!model.has_operation("CodePipeline_20150709"));
        assert!(model.operation_errors("NoSuchOperation").is_empty());
        let names: Vec<&str> = model.operations().collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn declared_errors_match_the_reference() {
        let model = Model::get();
        let mut errs = model.operation_errors("AcknowledgeThirdPartyJob");
        errs.sort();
        assert_eq!(
            errs,
            [
                "InvalidClientTokenException",
                "InvalidNonceException",
                "JobNotFoundException",
                "ValidationException"
            ]
        );
        assert!(
            model
                .operation_errors("GetThirdPartyJobDetails")
                .contains(&"InvalidJobException".to_string())
        );
        assert!(
            model
                .operation_errors("PutJobSuccessResult")
                .contains(&"OutputVariablesSizeExceededException".to_string())
        );
        assert_eq!(
            model.operation_errors("PollForJobs"),
            ["ActionTypeNotFoundException", "ValidationException"]
        );
    }

    #[test]
    fn members_keep_declaration_order_and_effective_constraints() {
        let model = Model::get();
        let input = model
            .shape_by_id("com.amazonaws.codepipeline#PollForJobsInput")
            .unwrap();
        let Kind::Structure(members) = &input.kind else {
            panic!("not a structure")
        };
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["actionTypeId", "maxBatchSize", "queryParam"]);
        assert!(members[0].required && !members[1].required);
        assert_eq!(
            members[1].constraints.range,
            Some(RangeBounds {
                min: Some(1.0),
                max: None
            })
        );

        let owner = model
            .shape_by_id("com.amazonaws.codepipeline#ActionOwner")
            .unwrap();
        let set = &model.enums[owner.constraints.enum_set.unwrap()];
        assert_eq!(set.display, "[AWS, ThirdParty, Custom]");

        let props = model
            .shape_by_id("com.amazonaws.codepipeline#ActionConfigurationProperty")
            .unwrap();
        let Kind::Structure(members) = &props.kind else {
            panic!("not a structure")
        };
        let required = members.iter().find(|m| m.name == "required").unwrap();
        assert!(required.required && required.has_default);
    }

    #[test]
    fn prelude_and_sensitivity() {
        let model = Model::get();
        for id in [
            "smithy.api#String",
            "smithy.api#Boolean",
            "smithy.api#Integer",
            "smithy.api#Timestamp",
        ] {
            assert!(model.shape_by_id(id).is_some(), "{id}");
        }
        let creds = model
            .shape_by_id("com.amazonaws.codepipeline#AWSSessionCredentials")
            .unwrap();
        assert!(creds.constraints.sensitive && creds.contains_sensitive);
        let job_data = model
            .shape_by_id("com.amazonaws.codepipeline#JobData")
            .unwrap();
        assert!(job_data.contains_sensitive && !job_data.constraints.sensitive);
        let job_id = model
            .shape_by_id("com.amazonaws.codepipeline#JobId")
            .unwrap();
        assert!(!job_id.contains_sensitive);
    }

    #[test]
    fn prelude_targets_and_unknown_targets_resolve() {
        let json = r#"{"smithy":"2.0","shapes":{
            "ex#Op":{"type":"operation","input":{"target":"ex#In"}},
            "ex#In":{"type":"structure","members":{
                "s":{"target":"smithy.api#String","traits":{"smithy.api#length":{"max":3}}},
                "n":{"target":"smithy.api#Integer"},
                "t":{"target":"smithy.api#Timestamp"},
                "b":{"target":"smithy.api#Boolean"},
                "x":{"target":"other#Missing"}}},
            "ex#Old":{"type":"string","traits":{"smithy.api#enum":[{"value":"a"},{"value":"b","name":"B"}]}}
        }}"#;
        let model = Model::parse(json).unwrap();
        assert!(model.has_operation("Op"));
        let Kind::Structure(members) = &model.shape_by_id("ex#In").unwrap().kind else {
            panic!()
        };
        assert!(matches!(model.shapes[members[0].target].kind, Kind::String));
        assert_eq!(
            members[0].constraints.length,
            Some(LengthBounds {
                min: None,
                max: Some(3)
            })
        );
        assert!(matches!(
            model.shapes[members[1].target].kind,
            Kind::Integer { .. }
        ));
        assert!(matches!(
            model.shapes[members[2].target].kind,
            Kind::Timestamp
        ));
        assert!(matches!(
            model.shapes[members[3].target].kind,
            Kind::Boolean
        ));
        assert!(matches!(
            model.shapes[members[4].target].kind,
            Kind::Document
        ));
        let old = model.shape_by_id("ex#Old").unwrap();
        assert_eq!(
            model.enums[old.constraints.enum_set.unwrap()].display,
            "[a, b]"
        );
    }

    #[test]
    fn ecma_patterns_translate() {
        assert_eq!(ecma_to_rust(r"^[0-9A-Za-z_-]+$"), r"^[0-9A-Za-z_-]+$");
        assert_eq!(
            ecma_to_rust(r"^arn:aws(-[\w]+)*:iam::"),
            r"^arn:aws(-[[:word:]]+)*:iam::"
        );
        assert_eq!(ecma_to_rust(r"\d+\W"), r"[[:digit:]]+[^[:word:]]");
        assert_eq!(ecma_to_rust(r"[a[&&~]"), r"[a\[\&\&\~]");
        assert_eq!(ecma_to_rust(r"a\/b"), "a/b");
        // Every pattern of the model compiles, and the tricky ones behave as in ECMA.
        let model = Model::get();
        for p in &model.patterns {
            assert!(p.regex().is_some(), "{}", p.source);
        }
        let word = Regex::new(&ecma_to_rust(r"^\w+$")).unwrap();
        assert!(word.is_match("abc_9") && !word.is_match("é"));
        let any = Regex::new(&ecma_to_rust(r"^[\s\S]*$")).unwrap();
        assert!(any.is_match("multi\nline é"));
        // Not anchored: Smithy patterns match anywhere unless they say ^ or $.
        let role = Regex::new(&ecma_to_rust(r"^arn:aws(-[\w]+)*:iam::[0-9]{12}:role/")).unwrap();
        assert!(role.is_match("arn:aws:iam::123456789012:role/x"));
        assert!(role.is_match("arn:aws-cn:iam::123456789012:role/"));
    }

    #[test]
    fn uncompilable_pattern_is_skipped_not_fatal() {
        let p = Pattern::new("(?=lookahead)".to_string());
        assert!(p.regex().is_none());
        assert!(p.regex().is_none());
    }
}
