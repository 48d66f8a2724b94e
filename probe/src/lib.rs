//! Black-box probes of what AWS CodePipeline leaves undocumented (`docs/probe.md`): the ack window, the
//! continuation delay, the re-offer nonce, a second AcknowledgeJob, a put after an abandoning stop, a
//! retried identical put and a result before acknowledge, measured through the public API only, so that
//! one run works against AWS and against the fake.
//!
//! - [`cli`]: the command line, setup, cleanup and the report file;
//! - [`world`]: the action types, the pipeline, its runs, and the calls the probes make;
//! - [`probes`]: the probes themselves;
//! - [`measure`]: bracketing a server-side delay between stamped calls;
//! - [`report`]: the report and the `profile` the fake loads.

pub mod cli;
pub mod measure;
pub mod probes;
pub mod report;
pub mod world;
