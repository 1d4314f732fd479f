//! The identity provider's state as the reload status, the settings API and `/metrics` show it.

use serde::{Deserialize, Serialize};

/// Where the provider stands, as the reload status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProviderState {
    /// SSO is off: nothing to discover.
    #[default]
    Disabled,
    /// The first discovery for this configuration is running.
    Discovering,
    /// Discovery and keys are loaded; logins work.
    Ready,
    /// The last attempt failed; retried with backoff.
    Unreachable,
}

/// The provider's state with a sentence for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProviderStatus {
    pub state: ProviderState,
    pub detail: String,
}
