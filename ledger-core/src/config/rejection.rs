//! Why a config command is refused. Checked in the order documented in `decide`.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("no setting has this key")]
    UnknownConfigKey,
    #[error("the value is not valid for this setting")]
    InvalidConfigValue,
    /// The seam's refusal (`crate::State::claim`): the key's entity id is another kind's.
    #[error("this setting's entity id is already another kind of entity's")]
    IdTaken,
}

impl Rejection {
    /// The stable, snake_case code clients match on.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::UnknownConfigKey => "unknown_config_key",
            Rejection::InvalidConfigValue => "invalid_config_value",
            Rejection::IdTaken => "id_taken",
        }
    }
}
