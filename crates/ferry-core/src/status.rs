//! Where a transfer and each of its files stand: the states the store records, the history
//! lists and the app shows. Each has one stable lowercase form, the same in SQLite, in JSON
//! and on screen, so rows written by an older Ferry read back unchanged.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use crate::error::FerryError;

/// A state name the store holds that this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} state {value:?}")]
pub struct UnknownState {
    what: &'static str,
    value: String,
}

/// One enum per state column: the string forms, parsing and the SQLite mapping, written once.
macro_rules! state_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $v:ident => $s:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name {
            $($(#[$vdoc])* $v,)+
        }

        impl $name {
            /// Every state.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            /// The stable form, as stored and serialized.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(UnknownState { what: $what, value: s.to_string() }),
                }
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: UnknownState| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

state_enum! {
    /// A transfer as a whole.
    TransferState, "transfer" {
        /// Under way, or stopped by a crash or a lost link and resumable.
        Active => "active",
        /// Every file arrived and was verified.
        Done => "done",
        /// Ended by an error (recorded beside it); resumable while the room lives.
        Failed => "failed",
        /// Either side cancelled.
        Cancelled => "cancelled",
    }
}

state_enum! {
    /// One file of a transfer.
    FileState, "file" {
        /// Not yet complete (it may have a verified prefix).
        Pending => "pending",
        /// Complete, verified and in place.
        Done => "done",
    }
}

impl TransferState {
    /// Whether the transfer has ended, for good or not.
    pub fn is_finished(self) -> bool {
        self != TransferState::Active
    }

    /// How a transfer that ended with `e` is recorded.
    pub fn ended_by(e: &FerryError) -> TransferState {
        if matches!(e, FerryError::Cancelled(_)) {
            TransferState::Cancelled
        } else {
            TransferState::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forms are a contract with existing databases and the UI: pinned, not derived.
    #[test]
    fn states_keep_their_stored_and_json_forms() {
        let forms: Vec<&str> = TransferState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(forms, ["active", "done", "failed", "cancelled"]);
        let forms: Vec<&str> = FileState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(forms, ["pending", "done"]);
        for s in TransferState::ALL {
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
            assert_eq!(s.as_str().parse::<TransferState>(), Ok(*s));
        }
        for s in FileState::ALL {
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
            assert_eq!(s.as_str().parse::<FileState>(), Ok(*s));
        }
        assert!("partial".parse::<TransferState>().is_err());
        // `ferry history` pads the column.
        assert_eq!(format!("{:9}|", TransferState::Done), "done     |");
    }

    #[test]
    fn an_ending_is_recorded_by_its_cause() {
        assert_eq!(
            TransferState::ended_by(&FerryError::Cancelled("by the user".into())),
            TransferState::Cancelled
        );
        assert_eq!(
            TransferState::ended_by(&FerryError::PeerGone("x".into())),
            TransferState::Failed
        );
        assert!(!TransferState::Active.is_finished());
        assert!(TransferState::Done.is_finished());
    }
}
