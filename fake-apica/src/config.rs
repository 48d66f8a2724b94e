//! The backend's settings.

use crate::preset::Preset;

/// The job id of the first test, as in `docs/design.md`'s example.
pub const DEFAULT_FIRST_JOB_ID: u64 = 153_245;

/// Request bodies above this are refused with 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The default of [`ApicaConfig::max_tests_per_token`]: 10,000 tests (about 50 MB), two hundred times
/// what the largest built-in scenario creates.
pub const DEFAULT_MAX_TESTS_PER_TOKEN: usize = 10_000;

/// How a [`crate::FakeApica`] starts.
#[derive(Clone, Debug)]
pub struct ApicaConfig {
    /// Bearer tokens the API accepts (more can be added later).
    pub tokens: Vec<String>,
    /// The presets tests can be created from (more can be added later).
    pub presets: Vec<Preset>,
    /// Seed of the random choices (the `error_rate` fault), so runs repeat.
    pub seed: u64,
    /// The first job id; later tests count up from it.
    pub first_job_id: u64,
    /// Base of `detailsUrl` (e.g. `http://127.0.0.1:8081`); `None` derives it from the request's `Host`.
    pub public_url: Option<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Who may use the admin API (`/_sim/`; see `sim_core::guard`).
    pub admin: sim_core::AdminGuard,
    /// The most tests one API token may create through `POST /v1/loadtests` (then 429
    /// `TestQuotaExceeded`): every test is kept for the Details page and the verdicts.
    pub max_tests_per_token: usize,
}

impl Default for ApicaConfig {
    fn default() -> Self {
        ApicaConfig {
            tokens: Vec::new(),
            presets: Vec::new(),
            seed: 0,
            first_job_id: DEFAULT_FIRST_JOB_ID,
            public_url: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            admin: sim_core::AdminGuard::new(),
            max_tests_per_token: DEFAULT_MAX_TESTS_PER_TOKEN,
        }
    }
}

impl ApicaConfig {
    /// A config accepting `token`, with `presets`.
    pub fn new(token: impl Into<String>, presets: impl IntoIterator<Item = Preset>) -> Self {
        ApicaConfig {
            tokens: vec![token.into()],
            presets: presets.into_iter().collect(),
            ..Default::default()
        }
    }

    /// The same config with `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}
