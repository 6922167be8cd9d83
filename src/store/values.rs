//! How the domain's closed sets of values are stored: as the same lowercase words the
//! contract uses, so the database reads plainly with the `sqlite3` shell.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::{ChatStatus, Role, Sender};

macro_rules! stored_as_word {
    ($type:ty, $parse:expr) => {
        impl ToSql for $type {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $type {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let word = value.as_str()?;
                $parse(word)
                    .ok_or_else(|| FromSqlError::Other(format!("unknown value {word:?}").into()))
            }
        }
    };
}

stored_as_word!(Sender, Sender::parse);
stored_as_word!(ChatStatus, ChatStatus::parse);
stored_as_word!(Role, |word| Some(Role::from_db(word)));
