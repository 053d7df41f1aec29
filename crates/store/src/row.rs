//! The identity row, defined once: its columns in order, their value kinds, and the SQL each
//! backend derives from them (the SELECT list and the upsert), so adding a column means
//! adding one line to `identity_row!` below (and a migration).

use sesame_core::StoreError;

/// A stored value that fails validation.
pub fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("corrupt row in the store: {e}"))
}

/// What a column holds. Every kind may be NULL in the cell, so one reader per kind serves
/// both required and optional columns; required ones refuse NULL when decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Bool,
}

/// One column's value, as a backend binds it to a statement and reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
}

/// A Rust type that one identity column holds.
pub trait Field: Sized {
    const KIND: Kind;
    fn into_cell(self) -> Cell;
    fn from_cell(column: &str, cell: Cell) -> Result<Self, StoreError>;
}

macro_rules! field {
    ($ty:ty, $kind:ident) => {
        impl Field for Option<$ty> {
            const KIND: Kind = Kind::$kind;
            fn into_cell(self) -> Cell {
                Cell::$kind(self)
            }
            fn from_cell(column: &str, cell: Cell) -> Result<Self, StoreError> {
                match cell {
                    Cell::$kind(v) => Ok(v),
                    other => Err(corrupt(format!("column {column} holds {other:?}"))),
                }
            }
        }

        impl Field for $ty {
            const KIND: Kind = Kind::$kind;
            fn into_cell(self) -> Cell {
                Cell::$kind(Some(self))
            }
            fn from_cell(column: &str, cell: Cell) -> Result<Self, StoreError> {
                <Option<$ty>>::from_cell(column, cell)?
                    .ok_or_else(|| corrupt(format!("column {column} is NULL")))
            }
        }
    };
}

field!(String, Text);
field!(i64, Int);
field!(bool, Bool);

/// Declares `IdentityRow` and `IDENTITY_COLUMNS` from one list, in the order the SQL names the
/// columns.
macro_rules! identity_row {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        /// The identity columns, in backend-neutral types.
        pub struct IdentityRow {
            $($(#[$doc])* pub $field: $ty,)*
        }

        /// Every column of `IdentityRow`, in order, with its kind.
        pub const IDENTITY_COLUMNS: &[(&str, Kind)] =
            &[$((stringify!($field), <$ty as Field>::KIND),)*];

        impl IdentityRow {
            /// The values in `IDENTITY_COLUMNS` order.
            pub fn into_cells(self) -> Vec<Cell> {
                vec![$(Field::into_cell(self.$field),)*]
            }

            /// Rebuilds a row from cells read in `IDENTITY_COLUMNS` order.
            pub fn from_cells(cells: Vec<Cell>) -> Result<IdentityRow, StoreError> {
                if cells.len() != IDENTITY_COLUMNS.len() {
                    return Err(corrupt(format!("{} identity columns", cells.len())));
                }
                let mut cells = cells.into_iter();
                Ok(IdentityRow {
                    $($field: Field::from_cell(
                        stringify!($field),
                        cells.next().unwrap_or(Cell::Text(None)),
                    )?,)*
                })
            }
        }
    };
}

identity_row! {
    name: String,
    version: i64,
    created_at: i64,
    feedback_forwarding: bool,
    signing_override: Option<bool>,
    verification_status: String,
    dkim_origin: Option<String>,
    dkim_signing_enabled: Option<bool>,
    dkim_status: Option<String>,
    dkim_tokens: Option<String>,
    dkim_selector: Option<String>,
    dkim_next_length: Option<i64>,
    dkim_length_changed_at: Option<i64>,
    dkim_downgraded_at: Option<i64>,
    /// JSON array of `[key, value]` pairs.
    tags: String,
    v_last_checked: Option<i64>,
    v_last_success: Option<i64>,
    v_error: Option<String>,
    /// JSON `[primary, admin, serial]`.
    v_soa: Option<String>,
    v_pending_since: Option<i64>,
    v_failing_since: Option<i64>,
    v_next_check_at: Option<i64>,
    v_attempts: i64,
    dkim_active: i64,
    dkim_staged: Option<i64>,
    mail_from_domain: Option<String>,
    mail_from_behavior: String,
    mail_from_status: Option<String>,
    mf_last_checked: Option<i64>,
    mf_last_success: Option<i64>,
    mf_error: Option<String>,
    mf_pending_since: Option<i64>,
    mf_failing_since: Option<i64>,
    mf_next_check_at: Option<i64>,
    mf_attempts: i64,
    /// JSON array of `[kind, status, created, updated]`.
    recommendations: String,
    rec_next_check_at: Option<i64>,
    rec_attempts: i64,
    /// The earliest of the three schedules (`Identity::next_check_at`): what claims read.
    due_at: Option<i64>,
    /// An address's verification link: the token's SHA-256 in hex, never the token.
    link_hash: Option<String>,
    link_sent_at: Option<i64>,
    link_expires_at: Option<i64>,
    link_success_url: Option<String>,
    link_failure_url: Option<String>,
    /// JSON array of `[selector, at, by]`: the DKIM set-up's revocations.
    dkim_revocations: String,
}

/// The columns written before the row's own: the key's first half and the kind of name (a
/// filter column derived from the name, so not part of `IdentityRow`).
pub const KEY_COLUMNS: &[&str] = &["account_id", "identity_type"];

/// The identity SQL of one backend, built once from `IDENTITY_COLUMNS`.
pub struct IdentitySql {
    /// `name, version, …`: the SELECT list, in `IDENTITY_COLUMNS` order.
    pub columns: String,
    /// One identity's row by `(account_id, name)`, the first two parameters.
    pub select_one: String,
    /// Inserts the row or, if `(account_id, name)` exists, overwrites every column but the key;
    /// binds `KEY_COLUMNS` then `IDENTITY_COLUMNS`. An upsert, not a delete and insert: that
    /// would cascade to the identity's keys. It also ends any verification lease, since any
    /// write of an identity does.
    pub upsert: String,
}

impl IdentitySql {
    /// The statements with the backend's placeholder for the n-th parameter (from 1).
    pub fn new(placeholder: fn(usize) -> String) -> IdentitySql {
        let names = || IDENTITY_COLUMNS.iter().map(|(name, _)| *name);
        let all: Vec<&str> = KEY_COLUMNS.iter().copied().chain(names()).collect();
        let params: Vec<String> = (1..=all.len()).map(placeholder).collect();
        let updates: Vec<String> = all
            .iter()
            .filter(|c| !matches!(**c, "account_id" | "name"))
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let columns = names().collect::<Vec<_>>().join(", ");
        IdentitySql {
            select_one: format!(
                "SELECT {columns} FROM identities WHERE account_id = {} AND name = {}",
                placeholder(1),
                placeholder(2)
            ),
            columns,
            upsert: format!(
                "INSERT INTO identities ({}) VALUES ({}) ON CONFLICT (account_id, name) \
                 DO UPDATE SET {}, v_lease_until = NULL",
                all.join(", "),
                params.join(", "),
                updates.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_upsert_binds_every_column_once_and_updates_all_but_the_key() {
        let sql = IdentitySql::new(|n| format!("?{n}"));
        assert_eq!(IDENTITY_COLUMNS.len(), 45);
        assert!(sql.upsert.contains("?47)"), "{}", sql.upsert);
        assert!(!sql.upsert.contains("?48"), "{}", sql.upsert);
        assert!(sql.upsert.starts_with(
            "INSERT INTO identities (account_id, identity_type, name, version, created_at, "
        ));
        assert!(sql.upsert.contains(
            "DO UPDATE SET identity_type = excluded.identity_type, version = excluded.version, "
        ));
        assert!(
            sql.upsert
                .ends_with("dkim_revocations = excluded.dkim_revocations, v_lease_until = NULL")
        );
        assert!(!sql.upsert.contains("name = excluded.name"));
        assert!(!sql.upsert.contains("account_id = excluded"));
        let pg = IdentitySql::new(|n| format!("${n}"));
        assert_eq!(
            pg.select_one,
            format!(
                "SELECT {} FROM identities WHERE account_id = $1 AND name = $2",
                pg.columns
            )
        );
    }

    #[test]
    fn cells_round_trip_and_a_null_in_a_required_column_is_corrupt() {
        let mut cells: Vec<Cell> = IDENTITY_COLUMNS
            .iter()
            .map(|(_, kind)| match kind {
                Kind::Text => Cell::Text(Some("x".into())),
                Kind::Int => Cell::Int(Some(7)),
                Kind::Bool => Cell::Bool(Some(true)),
            })
            .collect();
        let row = IdentityRow::from_cells(cells.clone()).unwrap();
        assert_eq!(row.into_cells(), cells);
        cells[0] = Cell::Text(None);
        assert!(IdentityRow::from_cells(cells.clone()).is_err());
        cells[0] = Cell::Int(Some(1));
        assert!(IdentityRow::from_cells(cells).is_err());
    }
}
