//! Registers a Custom action type on an account, idempotently: an action type that already exists is
//! left as it is (CodePipeline cannot change one; a new definition needs a new version).

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionConfigurationProperty, ActionConfigurationPropertyType, ActionOwner,
    ActionTypeSettings, ArtifactDetails,
};

use crate::action_type::{ActionTypeId, Owner};

/// One configuration property of the action type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertySpec {
    /// The property's name.
    pub name: &'static str,
    /// Whether a pipeline must set it.
    pub required: bool,
    /// Whether it identifies the action (shown in the console, usable in URL templates when not secret).
    pub key: bool,
    /// Whether CodePipeline hides it.
    pub secret: bool,
    /// Whether workers can poll by it (at most one; must be required and not secret).
    pub queryable: bool,
    /// A line for the console.
    pub description: &'static str,
}

/// The properties of the Apica Loadtest action.
pub fn apica_properties() -> Vec<PropertySpec> {
    vec![
        PropertySpec {
            name: "PresetName",
            required: true,
            key: true,
            secret: false,
            queryable: false,
            description: "The load-test preset to run",
        },
        PropertySpec {
            name: "RunnableFile",
            required: true,
            key: false,
            secret: false,
            queryable: false,
            description: "The runnable file the load test runs",
        },
        PropertySpec {
            name: "ApiToken",
            required: false,
            key: false,
            secret: true,
            queryable: false,
            description: "API token for the backend; overrides the agent's APICA_API_TOKEN",
        },
    ]
}

/// The properties of the timed-wait action.
pub fn timed_wait_properties() -> Vec<PropertySpec> {
    vec![
        PropertySpec {
            name: "Duration",
            required: false,
            key: true,
            secret: false,
            queryable: false,
            description: "How long to wait, e.g. 90s, 10m, 2h (or give Rounds)",
        },
        PropertySpec {
            name: "Rounds",
            required: false,
            key: true,
            secret: false,
            queryable: false,
            description: "How many continuation rounds to wait, whatever the time (or give Duration)",
        },
    ]
}

/// What to register.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The action type; its owner must be Custom.
    pub action_type: ActionTypeId,
    /// Its configuration properties.
    pub properties: Vec<PropertySpec>,
    /// The Details link, e.g. `https://backend/jobs/{ExternalExecutionId}`.
    pub execution_url_template: Option<String>,
    /// A static link to the backend.
    pub entity_url_template: Option<String>,
    /// How many input artifacts an action of the type takes: (minimum, maximum), each 0..=5.
    pub input_artifacts: (i32, i32),
    /// How many output artifacts it makes: (minimum, maximum), each 0..=5.
    pub output_artifacts: (i32, i32),
}

/// What registering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// The action type was created.
    Created,
    /// It existed already with the same property names.
    AlreadyExists,
    /// It existed already, with other properties: register a new version to change it.
    ExistsWithOtherProperties {
        /// The property names it has.
        existing: Vec<String>,
    },
}

/// Why registering failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Only Custom action types can be registered by an account.
    #[error(
        "{0} is not a Custom action type: only owner Custom can be registered with CreateCustomActionType"
    )]
    NotCustom(String),
    /// At most one queryable property, required and not secret.
    #[error("bad property set: {0}")]
    BadProperties(String),
    /// A call failed.
    #[error("{operation} failed: {message}")]
    Call {
        /// The operation.
        operation: &'static str,
        /// The SDK's error, with context.
        message: String,
    },
}

async fn existing_properties(
    client: &Client,
    id: &ActionTypeId,
) -> Result<Option<Vec<String>>, RegisterError> {
    let mut next_token: Option<String> = None;
    loop {
        let out = client
            .list_action_types()
            .action_owner_filter(ActionOwner::Custom)
            .set_next_token(next_token.clone())
            .send()
            .await
            .map_err(|e| RegisterError::Call {
                operation: "ListActionTypes",
                message: DisplayErrorContext(&e).to_string(),
            })?;
        for t in out.action_types() {
            let Some(tid) = t.id() else { continue };
            if tid.category().as_str() == id.category
                && tid.provider() == id.provider
                && tid.version() == id.version
            {
                return Ok(Some(
                    t.action_configuration_properties()
                        .iter()
                        .map(|p| p.name().to_string())
                        .collect(),
                ));
            }
        }
        match out.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
            _ => return Ok(None),
        }
    }
}

fn compare(existing: Vec<String>, wanted: &[PropertySpec]) -> Registered {
    let mut have = existing.clone();
    have.sort();
    let mut want: Vec<String> = wanted.iter().map(|p| p.name.to_string()).collect();
    want.sort();
    if have == want {
        Registered::AlreadyExists
    } else {
        Registered::ExistsWithOtherProperties { existing }
    }
}

/// Creates the action type unless it exists.
pub async fn register(
    client: &Client,
    registration: &Registration,
) -> Result<Registered, RegisterError> {
    let id = &registration.action_type;
    if id.owner != Owner::Custom {
        return Err(RegisterError::NotCustom(id.to_string()));
    }
    let queryable: Vec<_> = registration
        .properties
        .iter()
        .filter(|p| p.queryable)
        .collect();
    if queryable.len() > 1 {
        return Err(RegisterError::BadProperties(
            "at most one property can be queryable".into(),
        ));
    }
    if let Some(p) = queryable.first().filter(|p| !p.required || p.secret) {
        return Err(RegisterError::BadProperties(format!(
            "the queryable property {} must be required and not secret",
            p.name
        )));
    }
    if let Some(existing) = existing_properties(client, id).await? {
        return Ok(compare(existing, &registration.properties));
    }
    let mut properties = Vec::new();
    for p in &registration.properties {
        let property = ActionConfigurationProperty::builder()
            .name(p.name)
            .required(p.required)
            .key(p.key)
            .secret(p.secret)
            .queryable(p.queryable)
            .description(p.description)
            .r#type(ActionConfigurationPropertyType::String)
            .build()
            .map_err(|e| RegisterError::BadProperties(e.to_string()))?;
        properties.push(property);
    }
    let settings = ActionTypeSettings::builder()
        .set_execution_url_template(registration.execution_url_template.clone())
        .set_entity_url_template(registration.entity_url_template.clone())
        .build();
    let created = client
        .create_custom_action_type()
        .category(ActionCategory::from(id.category.as_str()))
        .provider(&id.provider)
        .version(&id.version)
        .settings(settings)
        .set_configuration_properties(Some(properties))
        .input_artifact_details(
            ArtifactDetails::builder()
                .minimum_count(registration.input_artifacts.0)
                .maximum_count(registration.input_artifacts.1)
                .build(),
        )
        .output_artifact_details(
            ArtifactDetails::builder()
                .minimum_count(registration.output_artifacts.0)
                .maximum_count(registration.output_artifacts.1)
                .build(),
        )
        .send()
        .await;
    match created {
        Ok(_) => Ok(Registered::Created),
        Err(e) => {
            // Another registrant may have won the race: if it exists now, that is success.
            let code = e.code().map(str::to_string);
            if let Ok(Some(existing)) = existing_properties(client, id).await {
                tracing::debug!(
                    ?code,
                    "CreateCustomActionType failed but the action type exists"
                );
                return Ok(compare(existing, &registration.properties));
            }
            Err(RegisterError::Call {
                operation: "CreateCustomActionType",
                message: DisplayErrorContext(&e).to_string(),
            })
        }
    }
}
