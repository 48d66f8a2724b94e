//! Stage locking and execution modes (CP-STAGE-LOCK), and the stage transitions that
//! EnableStageTransition and DisableStageTransition open and close (`docs/protocol.md`).
//!
//! A run comes to a stage's boundary when it starts (the first stage) or when its previous stage is done.
//! It enters the stage when nothing holds it back: in `SUPERSEDED` and `QUEUED` mode a stage holds one run
//! at a time, and a disabled inbound transition holds every run. A run that cannot enter waits there; in
//! `SUPERSEDED` mode a newer run arriving at the same boundary supersedes it. Whenever a run leaves a stage
//! or ends, the runs waiting in that pipeline try again, oldest first.

use serde_json::{Value, json};
use sim_core::{NewEvent, Rule, Severity};

use crate::engine::Core;
use crate::error::ApiError;
use crate::pipelines::pipeline_not_found;
use crate::state::{DisabledTransition, World};
use crate::types::{ExecutionMode, ExecutionStatus};

/// Which side of a stage a transition call names (the model's `StageTransitionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionType {
    /// Into the stage.
    Inbound,
    /// From the stage to the next one: the next stage's inbound transition.
    Outbound,
}

impl std::str::FromStr for TransitionType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "Inbound" => Ok(TransitionType::Inbound),
            "Outbound" => Ok(TransitionType::Outbound),
            other => Err(format!(
                "transitionType `{other}` is not Inbound or Outbound"
            )),
        }
    }
}

impl Core {
    /// Moves a pipeline run on ([`Core::advance_run`]), then every run of its pipeline that waits at a
    /// stage boundary and may now enter, oldest first, until none moves.
    pub(crate) fn advance_pipeline(&self, w: &mut World, pe_id: &str) {
        let Some(pipeline) = w
            .pipeline_executions
            .get(pe_id)
            .map(|pe| pe.pipeline.clone())
        else {
            return;
        };
        self.advance_run(w, pe_id);
        self.wake(w, &pipeline);
    }

    /// Lets the runs of `pipeline` that wait at a boundary try again, oldest first, until none moves.
    pub(crate) fn wake(&self, w: &mut World, pipeline: &str) {
        loop {
            let waiting: Vec<String> = w
                .runs_of(pipeline)
                .iter()
                .filter(|id| {
                    w.pipeline_executions
                        .get(*id)
                        .is_some_and(|pe| pe.status == ExecutionStatus::InProgress && pe.waiting)
                })
                .cloned()
                .collect();
            let mut moved = false;
            for id in waiting {
                self.advance_run(w, &id);
                moved |= w
                    .pipeline_executions
                    .get(&id)
                    .is_none_or(|pe| !pe.waiting || pe.status != ExecutionStatus::InProgress);
            }
            if !moved {
                return;
            }
        }
    }

    /// A run at the boundary of its current stage: enters it (true), or waits there (false), recording
    /// why the first time and superseding an older run waiting at the same boundary (`SUPERSEDED`).
    pub(crate) fn try_enter(&self, w: &mut World, pe_id: &str) -> bool {
        let Some(pe) = w.pipeline_executions.get(pe_id) else {
            return false;
        };
        let Some(stage) = pe.stages.get(pe.stage).map(|s| s.name.clone()) else {
            return false;
        };
        let (pipeline, mode, position) = (
            pe.pipeline.clone(),
            pe.mode,
            w.runs_of(&pe.pipeline).iter().position(|id| id == pe_id),
        );
        let runs = w.runs_of(&pipeline);
        let disabled = w
            .pipelines
            .get(&pipeline)
            .and_then(|p| p.disabled_transitions.get(&stage))
            .cloned();
        let in_stage = |other: &crate::state::PipelineExecution| {
            other.id != pe_id
                && other.pipeline == pipeline
                && !other.status.is_finished()
                && other
                    .stages
                    .get(other.stage)
                    .is_some_and(|s| s.name == stage)
        };
        let holder = match mode {
            ExecutionMode::Parallel => None,
            _ => runs
                .iter()
                .filter_map(|id| w.pipeline_executions.get(id))
                .find(|o| in_stage(o) && o.entered)
                .map(|o| o.id.clone()),
        };
        // QUEUED: runs enter in the order they came; an older one waiting here goes first.
        let older_waiting = match (mode, position) {
            (ExecutionMode::Queued, Some(pos)) => runs[..pos]
                .iter()
                .filter_map(|id| w.pipeline_executions.get(id))
                .find(|o| in_stage(o) && o.waiting)
                .map(|o| o.id.clone()),
            _ => None,
        };
        let now = self.now();
        if disabled.is_none() && holder.is_none() && older_waiting.is_none() {
            let pe = w.pipeline_executions.get_mut(pe_id).expect("found above");
            pe.entered = true;
            pe.waiting = false;
            return true;
        }
        let pe = w.pipeline_executions.get_mut(pe_id).expect("found above");
        if pe.waiting {
            return false;
        }
        pe.waiting = true;
        pe.updated = now;
        let why = match (&disabled, &holder) {
            (Some(d), _) => format!("its inbound transition is disabled ({})", d.reason),
            (None, Some(h)) => format!("the stage holds execution {h}"),
            (None, None) => format!(
                "execution {} waits before it (QUEUED)",
                older_waiting.as_deref().unwrap_or("-")
            ),
        };
        let bare = pe.bare.as_ref().map(|b| b.label.clone());
        let mut event = NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ExecutionWaiting);
        if let Some(label) = bare {
            // A bare execution's run (the admin API's): the event belongs to that execution.
            event = event.execution(label);
        }
        w.emit(
            event
                .rule(Rule::CpStageLock, Severity::Info)
                .detail(format!(
                    "pipeline {pipeline} execution {pe_id} waits to enter stage {stage}: {why}"
                ))
                .data(json!({
                    "pipeline": pipeline,
                    "pipelineExecutionId": pe_id,
                    "stage": stage,
                    "mode": mode.as_str(),
                    "heldBy": holder,
                    "transitionDisabled": disabled.is_some(),
                })),
        );
        if mode == ExecutionMode::Superseded {
            let older: Vec<String> = match position {
                Some(pos) => w.runs_of(&pipeline)[..pos]
                    .iter()
                    .filter_map(|id| w.pipeline_executions.get(id))
                    .filter(|o| in_stage(o) && o.waiting)
                    .map(|o| o.id.clone())
                    .collect(),
                None => Vec::new(),
            };
            for id in older {
                let mut event = NewEvent::new(
                    sim_core::Source::Cp,
                    sim_core::EventKind::ExecutionSuperseded,
                );
                if let Some(o) = w.pipeline_executions.get_mut(&id) {
                    o.waiting = false;
                    if let Some(b) = &o.bare {
                        event = event.execution(b.label.clone());
                    }
                }
                w.emit(
                    event
                        .rule(Rule::CpStageLock, Severity::Info)
                        .detail(format!(
                            "pipeline {pipeline} execution {id} superseded at stage {stage} by the newer execution {pe_id}"
                        ))
                        .data(json!({
                            "pipeline": pipeline,
                            "pipelineExecutionId": id,
                            "stage": stage,
                            "supersededBy": pe_id,
                        })),
                );
                self.end_pipeline(w, &id, ExecutionStatus::Superseded);
            }
        }
        false
    }

    // ----- EnableStageTransition / DisableStageTransition -----

    /// DisableStageTransition: runs that come to the stage (`Inbound`) or leave it for the next stage
    /// (`Outbound`, which is the next stage's inbound transition) wait at that boundary until the
    /// transition is enabled again. A run already in the stage goes on.
    pub fn disable_stage_transition(
        &self,
        caller: Option<&str>,
        pipeline: &str,
        stage: &str,
        kind: TransitionType,
        reason: &str,
    ) -> Result<(), ApiError> {
        self.with_world(|w| {
            let target = Self::transition_target(w, pipeline, stage, kind)?;
            let now = self.now();
            let p = w
                .pipelines
                .get_mut(pipeline)
                .expect("checked by transition_target");
            p.disabled_transitions.insert(
                target.clone(),
                DisabledTransition {
                    reason: reason.to_string(),
                    by: caller.map(str::to_string),
                    at: now,
                },
            );
            w.emit(Self::transition_event(
                caller,
                pipeline,
                &target,
                false,
                Some(reason),
            ));
            Ok(())
        })
    }

    /// EnableStageTransition: the transition is open again, and the runs waiting at it move on (in
    /// `SUPERSEDED` mode only the newest one waits there).
    pub fn enable_stage_transition(
        &self,
        caller: Option<&str>,
        pipeline: &str,
        stage: &str,
        kind: TransitionType,
    ) -> Result<(), ApiError> {
        self.with_world(|w| {
            let target = Self::transition_target(w, pipeline, stage, kind)?;
            let p = w
                .pipelines
                .get_mut(pipeline)
                .expect("checked by transition_target");
            if p.disabled_transitions.remove(&target).is_some() {
                w.emit(Self::transition_event(
                    caller, pipeline, &target, true, None,
                ));
                self.wake(w, pipeline);
            }
            Ok(())
        })
    }

    /// The stage whose inbound transition a call names: `stage` for `Inbound`, the next one for
    /// `Outbound`. The first stage has no inbound transition and the last no outbound one.
    fn transition_target(
        w: &World,
        pipeline: &str,
        stage: &str,
        kind: TransitionType,
    ) -> Result<String, ApiError> {
        let p = w
            .pipelines
            .get(pipeline)
            .ok_or_else(|| pipeline_not_found(pipeline))?;
        let index = p
            .stages
            .iter()
            .position(|s| s.name == stage)
            .ok_or_else(|| {
                ApiError::new(
                    "StageNotFoundException",
                    format!(
                        "Pipeline {pipeline} has no stage named '{stage}'; its stages are {}",
                        p.stages
                            .iter()
                            .map(|s| format!("'{}'", s.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        let target = match kind {
            TransitionType::Inbound if index == 0 => None,
            TransitionType::Inbound => Some(index),
            TransitionType::Outbound => Some(index + 1).filter(|i| *i < p.stages.len()),
        };
        target
            .and_then(|i| p.stages.get(i))
            .map(|s| s.name.clone())
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "Stage '{stage}' of pipeline {pipeline} has no {} transition: it is the {} stage",
                    match kind {
                        TransitionType::Inbound => "inbound",
                        TransitionType::Outbound => "outbound",
                    },
                    match kind {
                        TransitionType::Inbound => "first",
                        TransitionType::Outbound => "last",
                    }
                ))
            })
    }

    fn transition_event(
        caller: Option<&str>,
        pipeline: &str,
        stage: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> NewEvent {
        NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::TransitionChanged)
            .replica_opt(caller)
            .rule(Rule::CpStageLock, Severity::Info)
            .detail(format!(
                "pipeline {pipeline}: transition into stage {stage} {}{}",
                if enabled { "enabled" } else { "disabled" },
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ))
            .data(
                json!({"pipeline": pipeline, "stage": stage, "enabled": enabled, "reason": reason}),
            )
    }
}

/// GetPipelineState's `inboundTransitionState` of stage `stage` of `pipeline` (none for the first stage).
pub(crate) fn inbound_transition_state(
    core: &Core,
    w: &World,
    pipeline: &str,
    index: usize,
    stage: &str,
) -> Option<Value> {
    if index == 0 {
        return None;
    }
    let disabled = w
        .pipelines
        .get(pipeline)
        .and_then(|p| p.disabled_transitions.get(stage));
    Some(match disabled {
        None => json!({"enabled": true}),
        Some(d) => {
            let mut v = json!({
                "enabled": false,
                "disabledReason": d.reason,
                "lastChangedAt": d.at.epoch_seconds(),
            });
            if let Some(by) = &d.by {
                v["lastChangedBy"] = json!(format!(
                    "arn:aws:iam::{}:user/{by}",
                    core.settings.account_id
                ));
            }
            v
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::engine::SuccessResult;
    use crate::pipelines::ActionTypeSpec;
    use crate::settings::Settings;
    use crate::types::{ActionTypeId, Owner};

    const KEY: &str = "AKIDUNIT";

    fn custom() -> ActionTypeId {
        "Build/Custom/Unit/1".parse().unwrap()
    }

    /// A fake with a custom type and pipeline `p`: stage Build then stage Deploy, one custom action each,
    /// in `mode` (and pipelineType V2 unless SUPERSEDED).
    fn world(mode: &str) -> Arc<Core> {
        let core = Core::new(sim_core::Sim::manual(), Settings::default());
        core.register_action_type(ActionTypeSpec {
            id: Some(custom()),
            ..Default::default()
        })
        .unwrap();
        let action = |name: &str| json!({"name": name, "actionTypeId": custom().to_json(), "runOrder": 1, "configuration": {}});
        let mut decl = json!({"name": "p", "executionMode": mode, "stages": [
            {"name": "Build", "actions": [action("Make")]},
            {"name": "Deploy", "actions": [action("Ship")]},
        ]});
        if mode != "SUPERSEDED" {
            decl["pipelineType"] = json!("V2");
        }
        core.create_pipeline(&json!({ "pipeline": decl })).unwrap();
        core
    }

    fn start(core: &Core) -> String {
        core.start_pipeline_execution("p").unwrap()["pipelineExecutionId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn status(core: &Core, pe: &str) -> String {
        core.get_pipeline_execution("p", pe).unwrap()["pipelineExecution"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every job offered now: (job id, stage, pipelineExecutionId), acknowledged.
    fn take_all(core: &Core) -> Vec<(String, String, String)> {
        let polled = core
            .poll(Some(KEY), Owner::Custom, &custom(), 100, None)
            .unwrap();
        polled
            .into_iter()
            .map(|d| {
                core.acknowledge(Some(KEY), Owner::Custom, &d.job_id, &d.nonce, None)
                    .unwrap();
                let (stage, pe) = core.inspect(|w| {
                    let e = w.execution(&w.job(&d.job_id).unwrap().execution).unwrap();
                    (e.stage.clone(), e.pipeline_execution_id.clone())
                });
                (d.job_id, stage, pe)
            })
            .collect()
    }

    fn finish(core: &Core, job: &str) {
        core.put_success(
            Some(KEY),
            Owner::Custom,
            job,
            None,
            SuccessResult {
                percent_complete: Some(100),
                ..Default::default()
            },
        )
        .unwrap();
    }

    fn stage_state(core: &Core, stage: usize) -> Value {
        core.get_pipeline_state("p").unwrap()["stageStates"][stage].clone()
    }

    fn kinds(core: &Core, kind: sim_core::EventKind) -> usize {
        core.sim
            .events
            .all()
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }

    #[test]
    fn superseded_a_later_run_waits_at_the_boundary_and_a_newer_one_supersedes_it() {
        let core = world("SUPERSEDED");
        let first = start(&core);
        let second = start(&core);
        // Back to back: only the first run is in Build.
        let jobs = take_all(&core);
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].2, first);
        assert_eq!(status(&core, &second), "InProgress");
        let third = start(&core);
        assert_eq!(status(&core, &second), "Superseded");
        assert_eq!(status(&core, &third), "InProgress");
        assert!(take_all(&core).is_empty());
        assert_eq!(kinds(&core, sim_core::EventKind::ExecutionSuperseded), 1);
        assert_eq!(kinds(&core, sim_core::EventKind::ExecutionWaiting), 2);
        // The first run leaves Build for Deploy; the third enters Build.
        finish(&core, &jobs[0].0);
        let mut jobs = take_all(&core);
        jobs.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            jobs.iter()
                .map(|(_, s, pe)| (s.as_str(), pe.as_str()))
                .collect::<Vec<_>>(),
            vec![("Build", third.as_str()), ("Deploy", first.as_str())]
        );
        assert_eq!(
            stage_state(&core, 0)["latestExecution"]["pipelineExecutionId"],
            json!(third)
        );
        assert_eq!(
            stage_state(&core, 1)["latestExecution"]["pipelineExecutionId"],
            json!(first)
        );
        let list = core
            .list_pipeline_executions("p", None, None, None)
            .unwrap();
        let statuses: Vec<&str> = list["pipelineExecutionSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, vec!["InProgress", "Superseded", "InProgress"]);
    }

    #[test]
    fn queued_runs_wait_and_enter_in_order_none_superseded() {
        let core = world("QUEUED");
        let runs: Vec<String> = (0..3).map(|_| start(&core)).collect();
        let mut order = Vec::new();
        for _ in 0..3 {
            let jobs = take_all(&core);
            let build: Vec<_> = jobs.iter().filter(|j| j.1 == "Build").collect();
            assert_eq!(build.len(), 1, "one run at a time in Build: {jobs:?}");
            order.push(build[0].2.clone());
            for j in &jobs {
                finish(&core, &j.0);
            }
        }
        assert_eq!(order, runs);
        assert_eq!(kinds(&core, sim_core::EventKind::ExecutionSuperseded), 0);
        assert!(runs.iter().all(|r| status(&core, r) != "Superseded"));
        assert_eq!(
            core.get_pipeline_execution("p", &runs[0]).unwrap()["pipelineExecution"]["executionMode"],
            "QUEUED"
        );
    }

    #[test]
    fn parallel_runs_do_not_lock_stages() {
        let core = world("PARALLEL");
        let runs: Vec<String> = (0..3).map(|_| start(&core)).collect();
        let jobs = take_all(&core);
        assert_eq!(jobs.len(), 3);
        let mut seen: Vec<String> = jobs.iter().map(|j| j.2.clone()).collect();
        seen.sort();
        let mut expected = runs.clone();
        expected.sort();
        assert_eq!(seen, expected);
        assert_eq!(kinds(&core, sim_core::EventKind::ExecutionWaiting), 0);
    }

    #[test]
    fn queued_and_parallel_need_a_v2_pipeline() {
        let core = world("SUPERSEDED");
        let action = json!({"name": "A", "actionTypeId": custom().to_json(), "configuration": {}});
        let e = core
            .create_pipeline(&json!({"pipeline": {"name": "q", "executionMode": "QUEUED", "stages": [
                {"name": "One", "actions": [action.clone()]}, {"name": "Two", "actions": [action]}]}}))
            .unwrap_err();
        assert_eq!(e.type_name, "ValidationException");
        assert!(e.message.contains("V2"), "{}", e.message);
    }

    #[test]
    fn a_disabled_inbound_transition_holds_runs_until_enabled() {
        let core = world("SUPERSEDED");
        core.disable_stage_transition(Some(KEY), "p", "Deploy", TransitionType::Inbound, "freeze")
            .unwrap();
        let t = &stage_state(&core, 1)["inboundTransitionState"];
        assert_eq!(t["enabled"], false);
        assert_eq!(t["disabledReason"], "freeze");
        assert!(
            stage_state(&core, 0)
                .get("inboundTransitionState")
                .is_none()
        );
        let first = start(&core);
        let jobs = take_all(&core);
        finish(&core, &jobs[0].0);
        assert!(take_all(&core).is_empty(), "Deploy is closed");
        assert!(stage_state(&core, 1).get("latestExecution").is_none());
        assert_eq!(status(&core, &first), "InProgress");
        // Outbound of Build is the same transition.
        core.enable_stage_transition(None, "p", "Build", TransitionType::Outbound)
            .unwrap();
        assert_eq!(
            stage_state(&core, 1)["inboundTransitionState"]["enabled"],
            true
        );
        let jobs = take_all(&core);
        assert_eq!(
            (jobs[0].1.as_str(), jobs[0].2.as_str()),
            ("Deploy", first.as_str())
        );
        let e = core
            .disable_stage_transition(None, "p", "Build", TransitionType::Inbound, "x")
            .unwrap_err();
        assert_eq!(e.type_name, "ValidationException");
        let e = core
            .disable_stage_transition(None, "p", "Deploy", TransitionType::Outbound, "x")
            .unwrap_err();
        assert_eq!(e.type_name, "ValidationException");
        let e = core
            .enable_stage_transition(None, "p", "Nope", TransitionType::Inbound)
            .unwrap_err();
        assert_eq!(e.type_name, "StageNotFoundException");
        let e = core
            .enable_stage_transition(None, "nope", "Deploy", TransitionType::Inbound)
            .unwrap_err();
        assert_eq!(e.type_name, "PipelineNotFoundException");
        assert_eq!(kinds(&core, sim_core::EventKind::TransitionChanged), 2);
    }

    #[test]
    fn a_disabled_transition_supersedes_the_older_waiting_run() {
        let core = world("SUPERSEDED");
        core.disable_stage_transition(None, "p", "Deploy", TransitionType::Inbound, "hold")
            .unwrap();
        let first = start(&core);
        let j = take_all(&core);
        finish(&core, &j[0].0);
        let second = start(&core);
        let j = take_all(&core);
        finish(&core, &j[0].0);
        // Both waited before Deploy; the newer one superseded the older.
        assert_eq!(status(&core, &first), "Superseded");
        core.enable_stage_transition(None, "p", "Deploy", TransitionType::Inbound)
            .unwrap();
        let j = take_all(&core);
        assert_eq!((j.len(), j[0].2.as_str()), (1, second.as_str()));
    }

    fn bare(
        core: &Core,
        label: &str,
        file: &str,
        mode: Option<ExecutionMode>,
    ) -> Result<Value, crate::ApiError> {
        core.start_execution(crate::ExecutionSpec {
            action_type: Some(custom()),
            configuration: [("RunnableFile".to_string(), file.to_string())].into(),
            label: Some(label.into()),
            pipeline: Some("shared".into()),
            execution_mode: mode,
            ..Default::default()
        })
    }

    #[test]
    fn bare_executions_naming_one_pipeline_share_its_stage_lock_and_keep_their_labels() {
        let core = Core::new(sim_core::Sim::manual(), Settings::default());
        core.register_action_type(ActionTypeSpec {
            id: Some(custom()),
            ..Default::default()
        })
        .unwrap();
        bare(&core, "e-1", "one.jmx", None).unwrap();
        bare(&core, "e-2", "two.jmx", None).unwrap();
        assert_eq!(
            core.execution_status("e-2"),
            Some(ExecutionStatus::InProgress)
        );
        bare(&core, "e-3", "three.jmx", None).unwrap();
        // e-2 waited behind e-1 and was replaced by e-3: no action execution, the run's status.
        assert_eq!(
            core.execution_status("e-2"),
            Some(ExecutionStatus::Superseded)
        );
        assert!(core.inspect(|w| w.execution("e-2").is_none()));
        let events = core.sim.events.all();
        let superseded = events
            .iter()
            .find(|e| e.kind == sim_core::EventKind::ExecutionSuperseded)
            .expect("a superseded event");
        assert_eq!(superseded.execution.as_deref(), Some("e-2"));
        // The synthetic pipeline has a Source stage before the action's, and one job waits: e-1's.
        let state = core.get_pipeline_state("shared").unwrap();
        assert_eq!(state["stageStates"][0]["stageName"], "Source");
        // GetPipeline builds the synthetic declaration: Source, then the action with the first
        // execution's configuration.
        let got = core.get_pipeline("shared", None).unwrap();
        let stages = &got["pipeline"]["stages"];
        assert_eq!(stages[0]["actions"][0]["actionTypeId"]["owner"], "AWS");
        assert_eq!(
            stages[1]["actions"][0]["configuration"]["RunnableFile"],
            "one.jmx"
        );
        assert_eq!(got["pipeline"]["version"], 1);
        let jobs = take_all(&core);
        assert_eq!(jobs.len(), 1);
        finish(&core, &jobs[0].0);
        // e-3 runs with its own configuration, under its own label.
        let jobs = take_all(&core);
        assert_eq!(jobs.len(), 1);
        let (label, file) = core.inspect(|w| {
            let e = w.execution(&w.job(&jobs[0].0).unwrap().execution).unwrap();
            (e.label.clone(), e.configuration["RunnableFile"].clone())
        });
        assert_eq!((label.as_str(), file.as_str()), ("e-3", "three.jmx"));
        // Refused: a label in use (even by a superseded run), another mode for the same pipeline.
        let dup = bare(&core, "e-2", "again.jmx", None).unwrap_err();
        assert!(dup.to_string().contains("'e-2' already exists"), "{dup}");
        let mode = bare(&core, "e-4", "four.jmx", Some(ExecutionMode::Queued)).unwrap_err();
        assert!(
            mode.to_string().contains("SUPERSEDED, not QUEUED"),
            "{mode}"
        );
    }
}
