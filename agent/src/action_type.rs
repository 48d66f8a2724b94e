//! The action type a worker serves, written `Category/Owner/Provider/Version` (as `JOB_ACTION_TYPE` has it).

use std::fmt;
use std::str::FromStr;

/// Who owns an action type; it decides which job API the worker uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A partner action: PollForThirdPartyJobs and friends, with clientId/clientToken.
    ThirdParty,
    /// A custom action of one account: PollForJobs and friends.
    Custom,
}

impl Owner {
    /// The owner as CodePipeline spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::ThirdParty => "ThirdParty",
            Owner::Custom => "Custom",
        }
    }
}

/// The category of an action type (CodePipeline's `ActionCategory`).
const CATEGORIES: [&str; 7] = [
    "Source", "Build", "Deploy", "Test", "Invoke", "Approval", "Compute",
];

/// A validated action type id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTypeId {
    /// `Source`, `Build`, `Deploy`, `Test`, `Invoke`, `Approval` or `Compute`.
    pub category: String,
    /// `ThirdParty` or `Custom` (a job worker cannot serve `AWS` actions).
    pub owner: Owner,
    /// 1..35 characters of `[0-9A-Za-z_-]`.
    pub provider: String,
    /// 1..9 characters of `[0-9A-Za-z_-]`.
    pub version: String,
}

/// Why an action type could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ActionTypeError(String);

fn valid_name(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl FromStr for ActionTypeId {
    type Err = ActionTypeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let [category, owner, provider, version] = parts[..] else {
            return Err(ActionTypeError(format!(
                "{text:?} is not Category/Owner/Provider/Version (e.g. Test/ThirdParty/ApicaLoadtest/1)"
            )));
        };
        if !CATEGORIES.contains(&category) {
            return Err(ActionTypeError(format!(
                "category {category:?} is not one of {}",
                CATEGORIES.join(", ")
            )));
        }
        let owner = match owner {
            "ThirdParty" => Owner::ThirdParty,
            "Custom" => Owner::Custom,
            other => {
                return Err(ActionTypeError(format!(
                    "owner {other:?} cannot be served by a job worker: use ThirdParty or Custom"
                )));
            }
        };
        if !valid_name(provider, 35) {
            return Err(ActionTypeError(format!(
                "provider {provider:?} must be 1..35 characters of A-Z a-z 0-9 _ -"
            )));
        }
        if !valid_name(version, 9) {
            return Err(ActionTypeError(format!(
                "version {version:?} must be 1..9 characters of A-Z a-z 0-9 _ -"
            )));
        }
        Ok(Self {
            category: category.to_string(),
            owner,
            provider: provider.to_string(),
            version: version.to_string(),
        })
    }
}

impl fmt::Display for ActionTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.category,
            self.owner.as_str(),
            self.provider,
            self.version
        )
    }
}

impl ActionTypeId {
    /// The SDK's shape of this id.
    pub fn to_sdk(&self) -> aws_sdk_codepipeline::types::ActionTypeId {
        aws_sdk_codepipeline::types::ActionTypeId::builder()
            .category(self.category.as_str().into())
            .owner(self.owner.as_str().into())
            .provider(&self.provider)
            .version(&self.version)
            .build()
            .expect("all four members are set")
    }

    /// The IAM resource suffix: the ARN puts the owner first (`actiontype:Owner/Category/Provider/Version`).
    pub fn iam_resource(&self) -> String {
        format!(
            "actiontype:{}/{}/{}/{}",
            self.owner.as_str(),
            self.category,
            self.provider,
            self.version
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_harness_form() {
        let id: ActionTypeId = "Test/ThirdParty/ApicaLoadtest/1".parse().unwrap();
        assert_eq!(id.owner, Owner::ThirdParty);
        assert_eq!(id.provider, "ApicaLoadtest");
        assert_eq!(id.to_string(), "Test/ThirdParty/ApicaLoadtest/1");
        assert_eq!(
            id.iam_resource(),
            "actiontype:ThirdParty/Test/ApicaLoadtest/1"
        );
    }

    #[test]
    fn rejects_bad_forms_with_a_reason() {
        assert!(
            "Test/ThirdParty/Apica"
                .parse::<ActionTypeId>()
                .unwrap_err()
                .0
                .contains("Category/Owner")
        );
        assert!(
            "Test/AWS/Apica/1"
                .parse::<ActionTypeId>()
                .unwrap_err()
                .0
                .contains("ThirdParty or Custom")
        );
        assert!(
            "Tests/Custom/Apica/1"
                .parse::<ActionTypeId>()
                .unwrap_err()
                .0
                .contains("category")
        );
        assert!(
            "Test/Custom/Ap ica/1"
                .parse::<ActionTypeId>()
                .unwrap_err()
                .0
                .contains("provider")
        );
        assert!(
            "Test/Custom/Apica/1234567890"
                .parse::<ActionTypeId>()
                .unwrap_err()
                .0
                .contains("version")
        );
    }
}
