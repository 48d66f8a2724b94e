//! Presets: a name that a create request refers to, mapped to a duration and a scripted outcome.
//!
//! Written on the command line as `NAME=DURATION:passed` or `NAME=DURATION:failed:REASON`, in a file
//! (TOML `[[presets]]` tables or JSON), or as JSON through the admin API.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sim_core::{format_duration, parse_duration};

/// How a test that runs to its end finishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every threshold held.
    Passed,
    /// A threshold broke; the reason becomes the test's summary.
    Failed {
        /// What broke, e.g. `p95 response time 2300 ms > 2000 ms`.
        reason: String,
    },
}

/// A named kind of load test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The name create requests use (`preset` in the body, `PresetName` in the action configuration).
    pub name: String,
    /// How long a test of this preset runs, in simulated time.
    pub duration: Duration,
    /// How it ends.
    pub outcome: Outcome,
}

impl Preset {
    /// A preset whose tests pass after `duration`.
    pub fn passed(name: impl Into<String>, duration: Duration) -> Self {
        Preset {
            name: name.into(),
            duration,
            outcome: Outcome::Passed,
        }
    }

    /// A preset whose tests fail after `duration` with `reason`.
    pub fn failed(name: impl Into<String>, duration: Duration, reason: impl Into<String>) -> Self {
        Preset {
            name: name.into(),
            duration,
            outcome: Outcome::Failed {
                reason: reason.into(),
            },
        }
    }

    /// Builds a preset from its JSON/TOML form, checking every field.
    pub fn from_spec(spec: PresetSpec) -> Result<Self, PresetError> {
        let name = spec.name.trim().to_string();
        if name.is_empty() {
            return Err(PresetError::EmptyName);
        }
        let duration = parse_duration(&spec.duration).map_err(|e| PresetError::BadDuration {
            name: name.clone(),
            problem: e,
        })?;
        let outcome = match (spec.outcome.trim(), spec.reason) {
            ("passed", _) => Outcome::Passed,
            ("failed", Some(reason)) if !reason.trim().is_empty() => Outcome::Failed { reason },
            ("failed", _) => return Err(PresetError::MissingReason { name }),
            (other, _) => {
                return Err(PresetError::BadOutcome {
                    name,
                    outcome: other.to_string(),
                });
            }
        };
        Ok(Preset {
            name,
            duration,
            outcome,
        })
    }

    /// The JSON/TOML form of this preset.
    pub fn to_spec(&self) -> PresetSpec {
        let (outcome, reason) = match &self.outcome {
            Outcome::Passed => ("passed", None),
            Outcome::Failed { reason } => ("failed", Some(reason.clone())),
        };
        PresetSpec {
            name: self.name.clone(),
            duration: format_duration(self.duration),
            outcome: outcome.to_string(),
            reason,
        }
    }
}

/// The written form of a preset: `{"name": "soak", "duration": "6h", "outcome": "passed"}` or
/// `{"name": "spike", "duration": "10m", "outcome": "failed", "reason": "p95 > 2 s"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetSpec {
    /// The preset's name.
    pub name: String,
    /// Its duration as people write it (`90m`, `6h`).
    pub duration: String,
    /// `passed` or `failed`.
    pub outcome: String,
    /// The failure reason (required when `outcome` is `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What is wrong with a preset definition.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PresetError {
    /// `NAME=DURATION:OUTCOME` was not followed.
    #[error(
        "`{0}` is not a preset: write `NAME=DURATION:passed` or `NAME=DURATION:failed:REASON` (e.g. `soak=6h:passed`)"
    )]
    Syntax(String),
    /// The name is blank.
    #[error("a preset needs a non-empty name")]
    EmptyName,
    /// The duration does not parse.
    #[error("preset `{name}`: {problem}")]
    BadDuration {
        /// The preset.
        name: String,
        /// What the duration parser said.
        problem: String,
    },
    /// The outcome is neither `passed` nor `failed`.
    #[error("preset `{name}`: outcome `{outcome}` is neither `passed` nor `failed`")]
    BadOutcome {
        /// The preset.
        name: String,
        /// The outcome given.
        outcome: String,
    },
    /// A failing preset without a reason.
    #[error("preset `{name}`: a `failed` preset needs a reason (`NAME=DURATION:failed:REASON`)")]
    MissingReason {
        /// The preset.
        name: String,
    },
    /// The presets file could not be read or parsed.
    #[error("presets file {path}: {problem}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        problem: String,
    },
}

impl FromStr for Preset {
    type Err = PresetError;

    /// Parses `NAME=DURATION:passed` or `NAME=DURATION:failed:REASON` (the reason may hold colons).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || PresetError::Syntax(text.to_string());
        let (name, rest) = text.split_once('=').ok_or_else(syntax)?;
        let mut parts = rest.splitn(3, ':');
        let duration = parts.next().ok_or_else(syntax)?;
        let outcome = parts.next().ok_or_else(syntax)?;
        Preset::from_spec(PresetSpec {
            name: name.to_string(),
            duration: duration.to_string(),
            outcome: outcome.to_string(),
            reason: parts.next().map(str::to_string),
        })
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = format_duration(self.duration).replace(' ', "");
        match &self.outcome {
            Outcome::Passed => write!(f, "{}={d}:passed", self.name),
            Outcome::Failed { reason } => write!(f, "{}={d}:failed:{reason}", self.name),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetsFile {
    #[serde(default)]
    presets: Vec<PresetSpec>,
}

/// Reads presets from a file: JSON when the name ends in `.json` (`{"presets": [...]}` or a bare array),
/// otherwise TOML with one `[[presets]]` table per preset.
pub fn load_presets_file(path: &Path) -> Result<Vec<Preset>, PresetError> {
    let file_error = |problem: String| PresetError::File {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let specs = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        match serde_json::from_str::<Vec<PresetSpec>>(&text) {
            Ok(list) => list,
            Err(_) => serde_json::from_str::<PresetsFile>(&text)
                .map_err(|e| file_error(format!("{e}; expected {{\"presets\": [{{\"name\", \"duration\", \"outcome\", \"reason\"?}}]}}")))?
                .presets,
        }
    } else {
        toml::from_str::<PresetsFile>(&text)
            .map_err(|e| {
                file_error(format!(
                    "{e}; expected [[presets]] tables with name, duration, outcome, reason"
                ))
            })?
            .presets
    };
    specs.into_iter().map(Preset::from_spec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_presets_parse() {
        let soak: Preset = "soak=6h:passed".parse().unwrap();
        assert_eq!(soak, Preset::passed("soak", Duration::from_secs(6 * 3600)));
        let spike: Preset = "spike=10m:failed:p95 2300 ms > 2000 ms: too slow"
            .parse()
            .unwrap();
        assert_eq!(
            spike.outcome,
            Outcome::Failed {
                reason: "p95 2300 ms > 2000 ms: too slow".into()
            }
        );
        assert_eq!(
            spike.to_string(),
            "spike=10m:failed:p95 2300 ms > 2000 ms: too slow"
        );
        let long: Preset = "long=1h 30m:passed".parse().unwrap();
        assert_eq!(
            long.to_string().parse::<Preset>().unwrap(),
            long,
            "Display round-trips"
        );
    }

    #[test]
    fn bad_presets_say_what_is_wrong() {
        assert!(matches!(
            "soak".parse::<Preset>(),
            Err(PresetError::Syntax(_))
        ));
        assert!(matches!(
            "soak=6h".parse::<Preset>(),
            Err(PresetError::Syntax(_))
        ));
        assert!(matches!(
            "soak=forever:passed".parse::<Preset>(),
            Err(PresetError::BadDuration { .. })
        ));
        assert!(matches!(
            "soak=6h:maybe".parse::<Preset>(),
            Err(PresetError::BadOutcome { .. })
        ));
        assert!(matches!(
            "soak=6h:failed".parse::<Preset>(),
            Err(PresetError::MissingReason { .. })
        ));
        assert!(matches!(
            "=6h:passed".parse::<Preset>(),
            Err(PresetError::EmptyName)
        ));
    }

    #[test]
    fn presets_files_load_as_toml_or_json() {
        let dir = std::env::temp_dir().join(format!("fake-apica-presets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("presets.toml");
        std::fs::write(
            &toml_path,
            "[[presets]]\nname = \"soak\"\nduration = \"6h\"\noutcome = \"passed\"\n\n[[presets]]\nname = \"spike\"\nduration = \"10m\"\noutcome = \"failed\"\nreason = \"errors > 1%\"\n",
        )
        .unwrap();
        let json_path = dir.join("presets.json");
        std::fs::write(
            &json_path,
            r#"[{"name": "smoke", "duration": "1m", "outcome": "passed"}]"#,
        )
        .unwrap();
        let from_toml = load_presets_file(&toml_path).unwrap();
        assert_eq!(
            from_toml[1],
            Preset::failed("spike", Duration::from_secs(600), "errors > 1%")
        );
        assert_eq!(load_presets_file(&json_path).unwrap()[0].name, "smoke");
        std::fs::remove_dir_all(&dir).ok();
    }
}
