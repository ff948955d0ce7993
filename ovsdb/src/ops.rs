//! `transact` operations (RFC 7047 §5.2) and their results.

use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::error::{Error, Result, ServerError, ServerErrorKind};
use crate::value::{row_from_json, row_to_json, Atom, Row, Value};

/// A condition function (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `includes`
    Includes,
    /// `excludes`
    Excludes,
}

impl Function {
    fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Ge => ">=",
            Self::Gt => ">",
            Self::Includes => "includes",
            Self::Excludes => "excludes",
        }
    }
}

/// `[column, function, value]`
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The column.
    pub column: String,
    /// The function.
    pub function: Function,
    /// The value compared with.
    pub value: Value,
}

impl Condition {
    /// `column == value`
    pub fn eq(column: &str, value: impl Into<Value>) -> Self {
        Condition {
            column: column.to_string(),
            function: Function::Eq,
            value: value.into(),
        }
    }

    /// `_uuid == uuid`
    pub fn uuid(uuid: Uuid) -> Self {
        Condition::eq("_uuid", Value::uuid(uuid))
    }

    /// Any function.
    pub fn new(column: &str, function: Function, value: impl Into<Value>) -> Self {
        Condition {
            column: column.to_string(),
            function,
            value: value.into(),
        }
    }

    /// `[column, function, value]`
    pub fn to_json(&self) -> Json {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

/// A mutator (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
    /// `%=`
    Mod,
    /// `insert`
    Insert,
    /// `delete`
    Delete,
}

impl Mutator {
    fn as_str(self) -> &'static str {
        match self {
            Self::Add => "+=",
            Self::Sub => "-=",
            Self::Mul => "*=",
            Self::Div => "/=",
            Self::Mod => "%=",
            Self::Insert => "insert",
            Self::Delete => "delete",
        }
    }
}

/// `[column, mutator, value]`
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The column.
    pub column: String,
    /// The mutator.
    pub mutator: Mutator,
    /// Its argument.
    pub value: Value,
}

impl Mutation {
    /// Any mutation.
    pub fn new(column: &str, mutator: Mutator, value: impl Into<Value>) -> Self {
        Mutation {
            column: column.to_string(),
            mutator,
            value: value.into(),
        }
    }
}

/// `until` of a `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    /// `==`: wait until the selected rows equal `rows`.
    Eq,
    /// `!=`: wait until they differ.
    Ne,
}

/// One `transact` operation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Operation {
    /// `insert`, optionally naming the new row for later operations (`named-uuid`).
    Insert {
        /// Table.
        table: String,
        /// Initial values.
        row: Row,
        /// `uuid-name`.
        uuid_name: Option<String>,
    },
    /// `select`
    Select {
        /// Table.
        table: String,
        /// `where`
        conditions: Vec<Condition>,
        /// Columns to return (all if `None`).
        columns: Option<Vec<String>>,
    },
    /// `update`
    Update {
        /// Table.
        table: String,
        /// `where`
        conditions: Vec<Condition>,
        /// New values.
        row: Row,
    },
    /// `mutate`
    Mutate {
        /// Table.
        table: String,
        /// `where`
        conditions: Vec<Condition>,
        /// Mutations.
        mutations: Vec<Mutation>,
    },
    /// `delete`
    Delete {
        /// Table.
        table: String,
        /// `where`
        conditions: Vec<Condition>,
    },
    /// `wait`: the optimistic-concurrency check of what we read.
    Wait {
        /// Table.
        table: String,
        /// `where`
        conditions: Vec<Condition>,
        /// Columns compared.
        columns: Vec<String>,
        /// `until`
        until: WaitUntil,
        /// Expected rows.
        rows: Vec<Row>,
        /// Milliseconds; `Some(0)` fails at once if the condition does not hold.
        timeout_ms: Option<u64>,
    },
    /// `commit`
    Commit {
        /// Wait for the data to reach disk.
        durable: bool,
    },
    /// `abort`: makes the whole transaction fail with `aborted`.
    Abort,
    /// `comment`: logged by the server.
    Comment(String),
    /// `assert`: fails with `not owner` unless we hold the lock.
    Assert {
        /// The lock's name.
        lock: String,
    },
}

impl Operation {
    /// `insert` without a name.
    pub fn insert(table: &str, row: Row) -> Self {
        Operation::Insert {
            table: table.to_string(),
            row,
            uuid_name: None,
        }
    }

    /// `insert` with a `uuid-name` later operations refer to as [`Value::named`].
    pub fn insert_named(table: &str, row: Row, name: &str) -> Self {
        Operation::Insert {
            table: table.to_string(),
            row,
            uuid_name: Some(name.to_string()),
        }
    }

    /// `select`
    pub fn select(table: &str, conditions: Vec<Condition>, columns: Option<Vec<String>>) -> Self {
        Operation::Select {
            table: table.to_string(),
            conditions,
            columns,
        }
    }

    /// `update`
    pub fn update(table: &str, conditions: Vec<Condition>, row: Row) -> Self {
        Operation::Update {
            table: table.to_string(),
            conditions,
            row,
        }
    }

    /// `mutate`
    pub fn mutate(table: &str, conditions: Vec<Condition>, mutations: Vec<Mutation>) -> Self {
        Operation::Mutate {
            table: table.to_string(),
            conditions,
            mutations,
        }
    }

    /// `delete`
    pub fn delete(table: &str, conditions: Vec<Condition>) -> Self {
        Operation::Delete {
            table: table.to_string(),
            conditions,
        }
    }

    /// The table an operation addresses, if any.
    pub fn table(&self) -> Option<&str> {
        match self {
            Operation::Insert { table, .. }
            | Operation::Select { table, .. }
            | Operation::Update { table, .. }
            | Operation::Mutate { table, .. }
            | Operation::Delete { table, .. }
            | Operation::Wait { table, .. } => Some(table),
            _ => None,
        }
    }

    /// The `where` clause, empty for operations without one.
    pub fn conditions(&self) -> &[Condition] {
        match self {
            Operation::Select { conditions, .. }
            | Operation::Update { conditions, .. }
            | Operation::Mutate { conditions, .. }
            | Operation::Delete { conditions, .. }
            | Operation::Wait { conditions, .. } => conditions,
            _ => &[],
        }
    }

    /// The operation's JSON object.
    pub fn to_json(&self) -> Json {
        let conds = |c: &[Condition]| Json::Array(c.iter().map(Condition::to_json).collect());
        match self {
            Operation::Insert {
                table,
                row,
                uuid_name,
            } => {
                let mut o = json!({"op": "insert", "table": table, "row": row_to_json(row)});
                if let Some(n) = uuid_name {
                    o["uuid-name"] = json!(n);
                }
                o
            }
            Operation::Select {
                table,
                conditions,
                columns,
            } => {
                let mut o = json!({"op": "select", "table": table, "where": conds(conditions)});
                if let Some(c) = columns {
                    o["columns"] = json!(c);
                }
                o
            }
            Operation::Update {
                table,
                conditions,
                row,
            } => json!({"op": "update", "table": table, "where": conds(conditions),
                        "row": row_to_json(row)}),
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => json!({"op": "mutate", "table": table, "where": conds(conditions),
                "mutations": mutations.iter()
                    .map(|m| json!([m.column, m.mutator.as_str(), m.value.to_json()]))
                    .collect::<Vec<_>>()}),
            Operation::Delete { table, conditions } => {
                json!({"op": "delete", "table": table, "where": conds(conditions)})
            }
            Operation::Wait {
                table,
                conditions,
                columns,
                until,
                rows,
                timeout_ms,
            } => {
                let mut o = json!({"op": "wait", "table": table, "where": conds(conditions),
                    "columns": columns,
                    "until": match until { WaitUntil::Eq => "==", WaitUntil::Ne => "!=" },
                    "rows": rows.iter().map(row_to_json).collect::<Vec<_>>()});
                if let Some(t) = timeout_ms {
                    o["timeout"] = json!(t);
                }
                o
            }
            Operation::Commit { durable } => json!({"op": "commit", "durable": durable}),
            Operation::Abort => json!({"op": "abort"}),
            Operation::Comment(c) => json!({"op": "comment", "comment": c}),
            Operation::Assert { lock } => json!({"op": "assert", "lock": lock}),
        }
    }
}

/// The result of one successful operation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OperationResult {
    /// `insert`: the new row's uuid.
    pub uuid: Option<Uuid>,
    /// `select`: the rows (unnormalized; see [`crate::schema::DatabaseSchema::normalize_row`]).
    pub rows: Option<Vec<Row>>,
    /// `update`, `mutate`, `delete`: rows affected.
    pub count: Option<u64>,
}

/// Reads a `transact` result array: all results, or the first error as [`Error::Server`]
/// (or [`Error::Stale`] when the failed operation is a `wait` with a zero timeout, the shape
/// of an optimistic-concurrency check).
pub fn parse_transact_result(ops: &[Operation], result: &Json) -> Result<Vec<OperationResult>> {
    let items = result.as_array().ok_or_else(|| {
        Error::InvalidMessage(format!("transact result is not an array: {result}"))
    })?;
    // RFC 7047 §4.1.3: an error on an operation is followed by nulls; a commit failure adds one
    // element past the operations. Report the first error.
    for (index, item) in items.iter().enumerate() {
        if item.get("error").is_some() {
            let error = ServerError::from_json(item).unwrap_or(ServerError {
                kind: ServerErrorKind::Other(item.to_string()),
                details: None,
            });
            let verify = matches!(
                ops.get(index),
                Some(Operation::Wait {
                    timeout_ms: Some(0),
                    ..
                })
            );
            if verify && error.kind == ServerErrorKind::TimedOut {
                return Err(Error::Stale);
            }
            return Err(Error::Server { index, error });
        }
    }
    if items.len() < ops.len() {
        return Err(Error::InvalidMessage(format!(
            "{} results for {} operations",
            items.len(),
            ops.len()
        )));
    }
    items
        .iter()
        .take(ops.len())
        .map(|item| {
            let mut r = OperationResult::default();
            if let Some(u) = item.get("uuid") {
                r.uuid = Value::from_json(u)?.as_uuid();
                if r.uuid.is_none() {
                    return Err(Error::InvalidValue(format!("insert uuid {u}")));
                }
            }
            if let Some(rows) = item.get("rows").and_then(Json::as_array) {
                r.rows = Some(rows.iter().map(row_from_json).collect::<Result<_>>()?);
            }
            r.count = item.get("count").and_then(Json::as_u64);
            Ok(r)
        })
        .collect()
}

/// A map of string pairs, the shape of `external_ids`, `options`, `other_config`.
pub fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Atom::from(k), Atom::from(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rfc_examples() {
        let op = Operation::insert_named(
            "Bridge",
            [("name".to_string(), Value::from("br0"))].into(),
            "b",
        );
        assert_eq!(
            op.to_json(),
            json!({"op":"insert","table":"Bridge","row":{"name":"br0"},"uuid-name":"b"})
        );
        let op = Operation::mutate(
            "Open_vSwitch",
            vec![],
            vec![Mutation::new("bridges", Mutator::Insert, Value::named("b"))],
        );
        assert_eq!(
            op.to_json(),
            json!({"op":"mutate","table":"Open_vSwitch","where":[],
                   "mutations":[["bridges","insert",["named-uuid","b"]]]})
        );
    }

    #[test]
    fn errors_become_typed() {
        let ops = [Operation::Abort];
        let r = parse_transact_result(&ops, &json!([{"error": "aborted", "details": "x"}]));
        assert!(
            matches!(r, Err(Error::Server { index: 0, error }) if error.kind == ServerErrorKind::Aborted)
        );
        let wait = Operation::Wait {
            table: "T".into(),
            conditions: vec![],
            columns: vec![],
            until: WaitUntil::Eq,
            rows: vec![],
            timeout_ms: Some(0),
        };
        let r = parse_transact_result(&[wait], &json!([{"error": "timed out"}]));
        assert!(matches!(r, Err(Error::Stale)));
        assert!(parse_transact_result(&ops, &json!({})).is_err());
        assert!(parse_transact_result(&ops, &json!([])).is_err());
    }
}
