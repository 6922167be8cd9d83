//! How the domain's closed sets of values are stored: as the same lowercase words the
//! contract uses, so the database reads plainly with the `sqlite3` shell or `psql`.

use bytes::BytesMut;
use postgres::types::{self as pg, to_sql_checked, IsNull, Type};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::{ChatStatus, Role, Sender};

type PgError = Box<dyn std::error::Error + Sync + Send>;

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

        impl pg::ToSql for $type {
            fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, PgError> {
                pg::ToSql::to_sql(&self.as_str(), ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as pg::ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }

        impl<'a> pg::FromSql<'a> for $type {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, PgError> {
                let word = <&str as pg::FromSql>::from_sql(ty, raw)?;
                $parse(word).ok_or_else(|| format!("unknown value {word:?}").into())
            }

            fn accepts(ty: &Type) -> bool {
                <&str as pg::FromSql>::accepts(ty)
            }
        }
    };
}

stored_as_word!(Sender, Sender::parse);
stored_as_word!(ChatStatus, ChatStatus::parse);
stored_as_word!(Role, |word| Some(Role::from_db(word)));
