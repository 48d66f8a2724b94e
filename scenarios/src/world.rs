//! Both fakes in this process on loopback ports, sharing one manual clock, one activity tracker and one
//! event log, set up as a scenario says.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use fake_apica::{ApicaConfig, FakeApica, Preset};
use fake_codepipeline::{
    ActionTypeId, ActionTypeSpec, ExecutionSpec, FakeCodePipeline, Settings, TimingOverrides,
};
use serde_json::Value;
use sim_core::Sim;
use tokio::sync::oneshot;

use crate::scenario::{ExecutionSection, PropertySection, Scenario};

/// How many access keys the fake accepts: one per replica process a scenario may start.
pub const MAX_REPLICAS: usize = 32;
/// The API token the agent is given for the backend.
pub const API_TOKEN: &str = "apica-token-conformance";
/// How long an empty poll is parked (real time) in manual mode.
pub const PARK_POLLS: Duration = Duration::from_millis(200);

/// One execution the scenario started.
#[derive(Clone, Debug)]
pub struct StartedExecution {
    /// Its label.
    pub label: String,
    /// Its unique RunnableFile (tests are counted by it), when the action type has one.
    pub runnable_file: Option<String>,
    /// Its backend preset, when it has one.
    pub preset: Option<String>,
    /// Backend tests with its RunnableFile created before it started: a retried action keeps its
    /// configuration, so the tests of one RunnableFile are split between the attempts by when they were
    /// created (`docs/design.md`, "Retries").
    pub tests_before: usize,
}

/// The hosted world of one scenario run.
pub struct World {
    /// Clock, activity and events, shared by both fakes.
    pub sim: Sim,
    /// The fake CodePipeline.
    pub cp: FakeCodePipeline,
    /// The fake backend.
    pub apica: FakeApica,
    /// `http://127.0.0.1:PORT` of the fake CodePipeline.
    pub cp_url: String,
    /// `http://127.0.0.1:PORT` of the fake backend.
    pub apica_url: String,
    /// The action type the agent polls for.
    pub action_type: ActionTypeId,
    /// clientId -> clientToken the agent is told.
    pub agent_clients: BTreeMap<String, String>,
    /// The queryable property, `Name=value`, when the type has one.
    pub query_param: Option<String>,
    /// Executions started so far.
    pub executions: Vec<StartedExecution>,
    /// `[world] encryption_key`: the KMS key of the scenario's pipelines.
    pub encryption_key: Option<String>,
    stops: Vec<oneshot::Sender<()>>,
}

/// An action type's `inputArtifactDetails`/`outputArtifactDetails` for a scenario's count: exactly `n`,
/// or the API's default (0 to 5) for none.
fn artifact_details(n: u8) -> Value {
    if n == 0 {
        Value::Null
    } else {
        serde_json::json!({"minimumCount": n, "maximumCount": n})
    }
}

/// The scenario's `[source]` as a zip (a `README.txt` when it names no file), `blob.bin` of seeded
/// pseudo-random bytes when it asks for one.
pub fn source_zip(source: &crate::scenario::SourceSection, seed: u64) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let readme = std::collections::BTreeMap::from([(
        "README.txt".to_string(),
        "The source of a scenario without [source] files.\n".to_string(),
    )]);
    let files = if source.files.is_empty() {
        &readme
    } else {
        &source.files
    };
    for (path, text) in files {
        zip.start_file(path.as_str(), options)
            .with_context(|| format!("[source] file `{path}`"))?;
        zip.write_all(text.as_bytes())?;
    }
    if let Some(n) = source.blob_bytes {
        // Stored, not deflated: random bytes do not compress, and the artifact keeps its size.
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(n >= u32::MAX as u64);
        zip.start_file("blob.bin", stored)?;
        let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut left = n;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let len = left.min(buf.len() as u64) as usize;
            for chunk in buf[..len].chunks_mut(8) {
                // xorshift64*: cheap, seeded, incompressible enough.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            zip.write_all(&buf[..len])?;
            left -= len as u64;
        }
    }
    Ok(zip.finish()?.into_inner())
}

/// The access key and secret of replica `n` (from 1).
pub fn replica_key(n: usize, seed: u64) -> (String, String) {
    (
        format!("AKIDREPLICA{n:02}"),
        format!("replica-{n}-secret-{seed}"),
    )
}

/// Overrides for the protocol tier: another agent's action type and configuration.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--action-type`.
    pub action_type: Option<String>,
    /// `--config K=V`.
    pub config: BTreeMap<String, String>,
}

impl World {
    /// Starts both fakes and registers what the scenario declares.
    pub async fn start(scenario: &Scenario, seed: u64, overrides: &Overrides) -> Result<Self> {
        let sim = Sim::manual();
        let w = &scenario.world;
        let timing = TimingOverrides {
            job_timeout: Some(w.job_timeout.to_string()),
            ack_window: Some(w.ack_window.to_string()),
            continuation_delay: Some(w.continuation_delay.to_string()),
            action_timeout: Some(w.action_timeout.to_string()),
            final_on: Some(w.final_on.to_string()),
            job_timeout_from: Some(w.job_timeout_from.to_string()),
            action_timeout_per: Some(w.action_timeout_per.to_string()),
        };
        let mut settings = Settings {
            park_polls: Some(PARK_POLLS),
            seed,
            require_kms_key_id: w.require_kms_key_id,
            ..Settings::default()
        };
        settings.timing = timing
            .apply(&settings.timing)
            .map_err(|e| anyhow!("[world]: {e}"))?;
        for n in 1..=MAX_REPLICAS {
            let (k, s) = replica_key(n, seed);
            settings.access_keys.insert(k, s);
        }
        let cp = FakeCodePipeline::new(sim.clone(), settings);
        let cp_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the fake CodePipeline")?;
        let apica_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the fake backend")?;
        let cp_url = format!("http://{}", cp_listener.local_addr()?);
        let apica_url = format!("http://{}", apica_listener.local_addr()?);

        let mut presets = Vec::new();
        for p in &scenario.backend.presets {
            presets.push(
                Preset::from_spec(p.clone())
                    .map_err(|e| anyhow!("[[backend.presets]] {}: {e}", p.name))?,
            );
        }
        let mut config = ApicaConfig::new(API_TOKEN, presets).with_seed(seed);
        config.public_url = Some(apica_url.clone());
        let apica = FakeApica::new(sim.clone(), config);
        for f in &scenario.backend.faults {
            add_backend_fault(&apica, f).context("[[backend.faults]]")?;
        }

        let mut stops = Vec::new();
        for (listener, router) in [(cp_listener, cp.router()), (apica_listener, apica.router())] {
            let (tx, rx) = oneshot::channel::<()>();
            stops.push(tx);
            tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.await;
                };
                let _ = sim_core::serve::serve(listener, router, Default::default(), stop).await;
            });
        }

        // The action type: the scenario's, or the protocol tier's override.
        let action_type: ActionTypeId = match &overrides.action_type {
            Some(text) => text.parse().map_err(|e| anyhow!("action type: {e}"))?,
            None => scenario.action_type.id.clone(),
        };
        let properties: Vec<PropertySection> = if overrides.action_type.is_some() {
            overrides
                .config
                .keys()
                .map(|k| PropertySection {
                    name: k.clone(),
                    required: true,
                    key: false,
                    secret: false,
                    queryable: false,
                })
                .collect()
        } else {
            scenario
                .action_type
                .properties
                .clone()
                .unwrap_or_else(apica_properties)
        };
        let mut clients: std::collections::HashMap<String, String> =
            scenario.action_type.clients.clone().into_iter().collect();
        if action_type.owner == fake_codepipeline::Owner::ThirdParty && clients.is_empty() {
            clients.insert(
                "6f1c2a9e-0000-4000-8000-000000000001".into(),
                format!("client-token-{seed}"),
            );
        }
        let agent_clients: BTreeMap<String, String> = match &scenario.action_type.agent_clients {
            Some(c) => c.clone(),
            None => clients.clone().into_iter().collect(),
        };
        // The Details link: the template filled with the externalExecutionId the job reports. Another
        // agent's type (--action-type) does its work elsewhere than the fake Apica backend, so a template
        // pointing there would link every run to a page about nothing: it gets no link, only its id.
        let template = &scenario.action_type.execution_url_template;
        let settings = if overrides.action_type.is_some() && template.contains("{backend}") {
            serde_json::json!({})
        } else {
            serde_json::json!({"executionUrlTemplate": template.replace("{backend}", &apica_url)})
        };
        let props_json = serde_json::to_value(&properties)?;
        cp.core()
            .register_action_type(ActionTypeSpec {
                id: Some(action_type.clone()),
                settings,
                properties: fake_codepipeline::pipelines::parse_properties(Some(&props_json))
                    .map_err(|e| anyhow!("action type properties: {e}"))?,
                input_artifacts: artifact_details(scenario.action_type.input_artifacts),
                output_artifacts: artifact_details(scenario.action_type.output_artifacts),
                clients,
                timing: TimingOverrides::default(),
            })
            .map_err(|e| anyhow!("registering {action_type}: {e}"))?;
        let query_param = properties
            .iter()
            .find(|p| p.queryable)
            .map(|p| p.name.clone());

        let mut world = World {
            sim,
            cp,
            apica,
            cp_url,
            apica_url,
            action_type,
            agent_clients,
            query_param: None,
            executions: Vec::new(),
            encryption_key: scenario.world.encryption_key.clone(),
            stops,
        };
        if scenario.action_type.input_artifacts > 0 && scenario.source.upload {
            let zip = source_zip(&scenario.source, seed)?;
            let (bucket, key) = fake_codepipeline::pipelines::SYNTHETIC_SOURCE;
            let core = world.cp.core();
            core.store.create_bucket(bucket);
            core.store.put(
                bucket,
                key,
                fake_codepipeline::store::Object::new(zip.into(), world.sim.clock.now()),
            );
        }
        world.start_executions(&scenario.executions, overrides)?;
        // The queryable property's value the agent passes (JOB_QUERY_PARAM): the first execution's.
        if let Some(name) = query_param {
            let value = world.executions.first().and_then(|e| {
                world
                    .cp
                    .core()
                    .inspect(|w| w.execution(&e.label)?.configuration.get(&name).cloned())
            });
            world.query_param = value.map(|v| format!("{name}={v}"));
        }
        Ok(world)
    }

    /// Starts executions as `[[executions]]` declares them.
    pub fn start_executions(
        &mut self,
        sections: &[ExecutionSection],
        overrides: &Overrides,
    ) -> Result<()> {
        // Executions get a unique RunnableFile only when the action type has that property.
        let has_runnable = self.cp.core().inspect(|w| {
            w.action_type(&self.action_type)
                .is_some_and(|t| t.properties.iter().any(|p| p.name == "RunnableFile"))
        });
        for section in sections {
            for (i, label) in section.labels().into_iter().enumerate() {
                let mut configuration = if overrides.action_type.is_some() {
                    overrides.config.clone()
                } else {
                    section.configuration.clone()
                };
                if !section.presets.is_empty() && overrides.action_type.is_none() {
                    configuration.insert(
                        "PresetName".into(),
                        section.presets[i % section.presets.len()].clone(),
                    );
                }
                let runnable_file = has_runnable.then(|| {
                    let base = configuration
                        .get("RunnableFile")
                        .map(|f| f.trim_end_matches(".jmx").to_string());
                    match base {
                        Some(b) if b != label => format!("{b}-{label}.jmx"),
                        _ => format!("{label}.jmx"),
                    }
                });
                if let Some(f) = &runnable_file {
                    configuration.insert("RunnableFile".into(), f.clone());
                    self.apica.set_execution(f, &label);
                }
                let preset = configuration.get("PresetName").cloned();
                self.cp
                    .core()
                    .start_execution(ExecutionSpec {
                        action_type: Some(self.action_type.clone()),
                        configuration,
                        client_id: section.client.clone(),
                        label: Some(label.clone()),
                        pipeline: section.pipeline.clone(),
                        execution_mode: section.execution_mode,
                        encryption_key: self.encryption_key.clone(),
                    })
                    .map_err(|e| anyhow!("execution {label}: {e}"))?;
                self.executions.push(StartedExecution {
                    label,
                    runnable_file,
                    preset,
                    tests_before: 0,
                });
            }
        }
        Ok(())
    }

    /// Whether every execution has ended.
    pub fn all_finished(&self) -> bool {
        let core = self.cp.core();
        self.executions.iter().all(|e| {
            core.execution_status(&e.label)
                .is_some_and(|s| s != fake_codepipeline::ExecutionStatus::InProgress)
        })
    }

    /// The labels of the executions still in progress.
    pub fn unfinished_labels(&self) -> Vec<String> {
        let core = self.cp.core();
        self.executions
            .iter()
            .filter(|e| {
                core.execution_status(&e.label)
                    .is_none_or(|s| s == fake_codepipeline::ExecutionStatus::InProgress)
            })
            .map(|e| e.label.clone())
            .collect()
    }

    /// Stops both servers.
    pub fn stop(&mut self) {
        for tx in self.stops.drain(..) {
            let _ = tx.send(());
        }
    }
}

/// Adds a backend fault, resolved against the backend's clock now; returns it as the backend's fault API
/// shows it (`{"id": 1, "kind": "outage", "from": "+00:10:00", ...}`).
pub fn add_backend_fault(apica: &FakeApica, fault: &fake_apica::FaultSpec) -> Result<Value> {
    let clock = &apica.sim().clock;
    let resolved = fault
        .resolve(clock)
        .map_err(|e| anyhow!("backend fault: {e}"))?;
    let id = apica
        .add_fault(resolved.clone())
        .map_err(|e| anyhow!("backend fault: {e}"))?;
    Ok(resolved.to_json(id, clock))
}

/// The Apica Loadtest action's configuration properties (`docs/design.md`).
pub fn apica_properties() -> Vec<PropertySection> {
    let p = |name: &str, required, key, secret| PropertySection {
        name: name.into(),
        required,
        key,
        secret,
        queryable: false,
    };
    vec![
        p("PresetName", true, true, false),
        p("RunnableFile", true, false, false),
        p("ApiToken", false, false, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template_of(world: &World) -> Option<String> {
        world.cp.core().inspect(|w| {
            w.action_type(&world.action_type)
                .and_then(|t| t.execution_url_template().map(str::to_string))
        })
    }

    /// The Details link of another agent's type (`--action-type`) does not point at the fake Apica backend.
    #[tokio::test]
    async fn another_agents_action_type_gets_no_details_link_into_the_fake_backend() {
        let path = crate::builtin_dir().join("short-test.toml");
        let scenario = Scenario::load(&path).expect("short-test");
        let mut apica = World::start(&scenario, 1, &Overrides::default())
            .await
            .unwrap();
        let template = template_of(&apica).expect("the Apica type links to the backend");
        assert!(template.starts_with(&apica.apica_url), "{template}");
        apica.stop();

        let overrides = Overrides {
            action_type: Some("Test/Custom/SomethingElse/1".into()),
            config: [("Size".to_string(), "3".to_string())].into(),
        };
        let mut other = World::start(&scenario, 1, &overrides).await.unwrap();
        assert_eq!(template_of(&other), None);
        other.stop();
    }
}
