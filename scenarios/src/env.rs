//! The environment an agent under test gets (the contract of `docs/design.md`), written once for the
//! replicas the runner starts and for the `env.sh` that `sim` writes for an agent a person starts.

use std::path::PathBuf;

use fake_codepipeline::{ActionTypeId, Owner};

/// The region every replica is told.
pub const REGION: &str = "us-east-1";

/// What an agent needs to know about the world it is pointed at.
#[derive(Clone, Debug)]
pub struct AgentEnv {
    /// `http://127.0.0.1:PORT` of the fake CodePipeline.
    pub cp_url: String,
    /// `http://127.0.0.1:PORT` of the fake backend.
    pub apica_url: String,
    /// The backend's bearer token.
    pub api_token: String,
    /// The action type it polls for.
    pub action_type: ActionTypeId,
    /// The `{clientId: clientToken}` file (third-party types only).
    pub clients_file: PathBuf,
    /// `Name=value` of the queryable property, when the type has one.
    pub query_param: Option<String>,
    /// The suggested poll interval.
    pub poll_interval_ms: u64,
}

impl AgentEnv {
    /// The variables for one replica signing with `key`/`secret`, in a stable order.
    pub fn vars(&self, key: &str, secret: &str) -> Vec<(String, String)> {
        let mut env: Vec<(&str, String)> = vec![
            ("AWS_ENDPOINT_URL_CODEPIPELINE", self.cp_url.clone()),
            ("AWS_ENDPOINT_URL", self.cp_url.clone()),
            // The artifact store is S3 on the same address (path-style, as for any IP endpoint).
            ("AWS_ENDPOINT_URL_S3", self.cp_url.clone()),
            ("AWS_ACCESS_KEY_ID", key.to_string()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
            // The Rust, JS and Java SDKs and AWS CLI v2 read the first; boto3 and AWS CLI v1 only the second.
            ("AWS_REGION", REGION.to_string()),
            ("AWS_DEFAULT_REGION", REGION.to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("JOB_ACTION_TYPE", self.action_type.to_string()),
        ];
        if self.action_type.owner == Owner::ThirdParty {
            env.push((
                "JOB_CLIENT_TOKENS_FILE",
                self.clients_file.display().to_string(),
            ));
        }
        if let Some(q) = &self.query_param {
            env.push(("JOB_QUERY_PARAM", q.clone()));
        }
        env.push(("JOB_POLL_INTERVAL_MS", self.poll_interval_ms.to_string()));
        env.push(("APICA_API_URL", self.apica_url.clone()));
        env.push(("APICA_API_TOKEN", self.api_token.clone()));
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(action_type: &str) -> AgentEnv {
        AgentEnv {
            cp_url: "http://127.0.0.1:1".into(),
            apica_url: "http://127.0.0.1:2".into(),
            api_token: "t".into(),
            action_type: action_type.parse().unwrap(),
            clients_file: "/tmp/clients.json".into(),
            query_param: None,
            poll_interval_ms: 1,
        }
    }

    #[test]
    fn both_region_variables_and_the_clients_file_only_for_third_party() {
        let vars = env("Test/ThirdParty/ApicaLoadtest/1").vars("AKID", "s");
        let get = |k: &str| vars.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
        assert_eq!(get("AWS_REGION"), Some(REGION));
        assert_eq!(get("AWS_DEFAULT_REGION"), Some(REGION));
        assert_eq!(get("JOB_CLIENT_TOKENS_FILE"), Some("/tmp/clients.json"));
        let vars = env("Test/Custom/ApicaLoadtest/1").vars("AKID", "s");
        assert!(!vars.iter().any(|(k, _)| k == "JOB_CLIENT_TOKENS_FILE"));
    }
}
