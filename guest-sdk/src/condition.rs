//! Status conditions without a clock.

use serde::{Deserialize, Serialize};

/// The status of a [`Condition`]: `True`, `False` or `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// `"True"`.
    True,
    /// `"False"`.
    False,
    /// `"Unknown"`.
    Unknown,
}

impl From<bool> for ConditionStatus {
    fn from(b: bool) -> ConditionStatus {
        if b {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// One entry of `status.conditions`, in the form of `metav1.Condition`.
///
/// `lastTransitionTime` is an opaque string: plugins have no clock. Build conditions without it and
/// pass them through [`crate::Snapshot::update_conditions`] (or [`Condition::carry_over`]), which
/// copies it from the previous condition of the same type when the status did not change. A new
/// condition, or one whose status changed, goes out without it and the host stamps the time of the
/// status write.
///
/// ```
/// use wasmop_sdk::Condition;
///
/// let ready = Condition::new("Ready", true).reason("AllReplicasReady").observed_generation(Some(3));
/// assert!(ready.is_true());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition type, UpperCamelCase (`Ready`).
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// UpperCamelCase reason for the last transition (`AllReplicasReady`).
    #[serde(default)]
    pub reason: String,
    /// Human-readable details.
    #[serde(default)]
    pub message: String,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed (RFC 3339), kept as the host or a previous status wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl Condition {
    /// A condition of a type with a status (`true`, `false` or a [`ConditionStatus`]); reason and
    /// message are empty until set.
    pub fn new(type_: impl Into<String>, status: impl Into<ConditionStatus>) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: String::new(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: None,
        }
    }

    /// Sets the reason (UpperCamelCase).
    pub fn reason(mut self, reason: impl Into<String>) -> Condition {
        self.reason = reason.into();
        self
    }

    /// Sets the message.
    pub fn message(mut self, message: impl Into<String>) -> Condition {
        self.message = message.into();
        self
    }

    /// Sets the generation the condition reflects (usually [`crate::Snapshot::generation`]).
    pub fn observed_generation(mut self, generation: Option<i64>) -> Condition {
        self.observed_generation = generation;
        self
    }

    /// Whether the status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }

    /// The new conditions, in their order, each with the `lastTransitionTime` of the previous
    /// condition of the same type if that one had the same status (a time set on a new condition
    /// is kept). Previous conditions not in `new` are dropped: `new` is the full set.
    pub fn carry_over(previous: &[Condition], new: impl IntoIterator<Item = Condition>) -> Vec<Condition> {
        new.into_iter()
            .map(|mut c| {
                if c.last_transition_time.is_none()
                    && let Some(old) = previous
                        .iter()
                        .find(|p| p.type_ == c.type_ && p.status == c.status)
                {
                    c.last_transition_time = old.last_transition_time.clone();
                }
                c
            })
            .collect()
    }
}
