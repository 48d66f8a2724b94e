//! A read-only look at the fake's state for the scenario driver, the verdicts and tests: they see jobs,
//! executions, action types and faults, and change nothing except through the API and the admin calls.

use crate::engine::Core;
use crate::state::{ActionExecution, ActionType, FaultRule, Job, World};
use crate::types::{ActionTypeId, JobStatus};

/// The fake's state, borrowed while [`Core::inspect`] holds its lock.
pub struct WorldView<'a>(&'a World);

impl<'a> WorldView<'a> {
    /// Every job, in no particular order.
    pub fn jobs(&self) -> impl Iterator<Item = &'a Job> + 'a {
        self.0.jobs.values()
    }

    /// One job by id.
    pub fn job(&self, id: &str) -> Option<&'a Job> {
        self.0.jobs.get(id)
    }

    /// Every action execution, in label order.
    pub fn executions(&self) -> impl Iterator<Item = &'a ActionExecution> + 'a {
        self.0.executions.values()
    }

    /// One action execution by label.
    pub fn execution(&self, label: &str) -> Option<&'a ActionExecution> {
        self.0.executions.get(label)
    }

    /// Every registered action type.
    pub fn action_types(&self) -> impl Iterator<Item = &'a ActionType> + 'a {
        self.0.action_types.values()
    }

    /// One action type.
    pub fn action_type(&self, id: &ActionTypeId) -> Option<&'a ActionType> {
        self.0.action_types.get(id)
    }

    /// How many jobs of `action_type` a poll would hand out now (Queued, not leased).
    pub fn queued_jobs(&self, action_type: &ActionTypeId) -> usize {
        self.queued(action_type).len()
    }

    /// The jobs of `action_type` a poll would hand out now (Queued, not leased), in queue order.
    pub fn queued(&self, action_type: &ActionTypeId) -> Vec<&'a Job> {
        self.0.pollable.get(action_type).map_or(Vec::new(), |q| {
            q.values()
                .filter_map(|id| self.0.jobs.get(id))
                .filter(|j| j.status == JobStatus::Queued)
                .collect()
        })
    }

    /// The jobs of `action_type` in the queue and not acknowledged: waiting for a poll, or (with an ack
    /// window of 0, where a handed-out job stays offered) handed out and not yet acknowledged.
    pub fn unacknowledged(&self, action_type: &ActionTypeId) -> Vec<&'a Job> {
        self.0.pollable.get(action_type).map_or(Vec::new(), |q| {
            q.values()
                .filter_map(|id| self.0.jobs.get(id))
                .filter(|j| matches!(j.status, JobStatus::Queued | JobStatus::Dispatched))
                .collect()
        })
    }

    /// The injected CodePipeline faults, in the order they were set.
    pub fn faults(&self) -> &'a [FaultRule] {
        &self.0.faults
    }
}

impl Core {
    /// Runs `f` on a read-only view of the state. Nothing is recorded and nothing changes.
    pub fn inspect<R>(&self, f: impl FnOnce(WorldView<'_>) -> R) -> R {
        let world = self.lock();
        f(WorldView(&world))
    }
}
