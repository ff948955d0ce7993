//! An in-memory replica of monitored tables (an IDL), kept current from `update`, `update2`
//! and `update3` notifications, with change events; and [`Txn`], which records what was read
//! so the server can refuse a transaction built on a stale replica.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value as Json;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::ops::{Condition, Operation, WaitUntil};
use crate::schema::{ColumnType, DatabaseSchema};
use crate::value::{row_from_json, Atom, Row, Value};

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// New row (or present in the initial contents).
    Insert,
    /// Changed row.
    Modify,
    /// Deleted row.
    Delete,
}

/// A change to one row, with its contents before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// Table.
    pub table: String,
    /// Row uuid.
    pub uuid: Uuid,
    /// Kind of change.
    pub kind: ChangeKind,
    /// Before (None for inserts).
    pub old: Option<Row>,
    /// After (None for deletes).
    pub new: Option<Row>,
}

/// The replica: every monitored row, by table and uuid, normalized against the schema.
#[derive(Debug, Clone)]
pub struct Replica {
    schema: Arc<DatabaseSchema>,
    tables: BTreeMap<String, BTreeMap<Uuid, Row>>,
    last_txn_id: Option<String>,
    /// Monitored columns per table (all when absent): `update2` leaves out columns that hold
    /// their default value, so inserted rows are completed with defaults for these.
    columns: BTreeMap<String, Vec<String>>,
}

impl Replica {
    /// An empty replica of a database.
    pub fn new(schema: Arc<DatabaseSchema>) -> Self {
        Replica {
            schema,
            tables: BTreeMap::new(),
            last_txn_id: None,
            columns: BTreeMap::new(),
        }
    }

    /// Declares which columns of `table` are monitored (empty: all), so that rows missing
    /// some of them (default values) are completed.
    pub fn set_monitored_columns(&mut self, table: &str, columns: &[String]) {
        self.columns.insert(table.to_string(), columns.to_vec());
    }

    fn complete(&self, table: &str, row: &mut Row) {
        let Ok(t) = self.schema.table(table) else {
            return;
        };
        let cols: Vec<&String> = match self.columns.get(table) {
            Some(c) if !c.is_empty() => c.iter().collect(),
            _ => t.columns.keys().collect(),
        };
        for c in cols {
            if let Some(cs) = t.columns.get(c) {
                row.entry(c.clone())
                    .or_insert_with(|| cs.ty.default_value());
            }
        }
    }

    /// The schema.
    pub fn schema(&self) -> &Arc<DatabaseSchema> {
        &self.schema
    }

    /// Forgets every row (before a full resync).
    pub fn clear(&mut self) {
        self.tables.clear();
        self.last_txn_id = None;
    }

    /// The last transaction id seen (`monitor_cond_since`/`update3`).
    pub fn last_txn_id(&self) -> Option<&str> {
        self.last_txn_id.as_deref()
    }

    /// The rows of a table.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (&Uuid, &Row)> {
        self.tables.get(table).into_iter().flat_map(|t| t.iter())
    }

    /// One row.
    pub fn get(&self, table: &str, uuid: &Uuid) -> Option<&Row> {
        self.tables.get(table)?.get(uuid)
    }

    /// The first row of `table` whose string column `column` equals `value`.
    pub fn find(&self, table: &str, column: &str, value: &str) -> Option<(Uuid, &Row)> {
        self.rows(table)
            .find(|(_, r)| r.get(column).and_then(Value::as_str) == Some(value))
            .map(|(u, r)| (*u, r))
    }

    /// Number of rows across all tables.
    pub fn len(&self) -> usize {
        self.tables.values().map(BTreeMap::len).sum()
    }

    /// No rows at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn table_updates(v: &Json) -> Result<impl Iterator<Item = (&String, &Json)>> {
        Ok(v.as_object()
            .ok_or_else(|| Error::InvalidMessage(format!("table-updates {v}")))?
            .iter())
    }

    fn row_updates(t: &Json) -> Result<impl Iterator<Item = Result<(Uuid, &Json)>>> {
        Ok(t.as_object()
            .ok_or_else(|| Error::InvalidMessage(format!("table-update {t}")))?
            .iter()
            .map(|(u, r)| {
                Uuid::parse_str(u)
                    .map(|u| (u, r))
                    .map_err(|_| Error::InvalidMessage(format!("row uuid {u:?}")))
            }))
    }

    fn decode_row(&self, table: &str, v: &Json) -> Result<Row> {
        let mut row = self.schema.normalize_row(table, row_from_json(v)?)?;
        self.complete(table, &mut row);
        Ok(row)
    }

    /// Applies `update` (`monitor`) contents: per row `old`/`new`.
    pub fn apply_update(&mut self, updates: &Json) -> Result<Vec<RowChange>> {
        let mut changes = vec![];
        for (table, t) in Self::table_updates(updates)? {
            self.schema.table(table)?;
            for item in Self::row_updates(t)? {
                let (uuid, r) = item?;
                let new = match r.get("new") {
                    Some(n) => Some(self.decode_row(table, n)?),
                    None => None,
                };
                // `new` of a modify holds every monitored column.
                changes.push(self.set_row(table, uuid, new));
            }
        }
        Ok(changes)
    }

    /// Applies `update2` (`monitor_cond`) contents: `initial`, `insert`, `modify` (a diff)
    /// or `delete` per row.
    pub fn apply_update2(&mut self, updates: &Json) -> Result<Vec<RowChange>> {
        let mut changes = vec![];
        for (table, t) in Self::table_updates(updates)? {
            self.schema.table(table)?;
            for item in Self::row_updates(t)? {
                let (uuid, r) = item?;
                let change = if let Some(row) = r.get("initial").or_else(|| r.get("insert")) {
                    let row = self.decode_row(table, row)?;
                    self.set_row(table, uuid, Some(row))
                } else if let Some(diff) = r.get("modify") {
                    let diff = row_from_json(diff)?;
                    let mut row = self.get(table, &uuid).cloned().ok_or_else(|| {
                        Error::InvalidMessage(format!("modify of unknown row {uuid}"))
                    })?;
                    for (col, d) in diff {
                        let ty = self.schema.column(table, &col)?;
                        let cur = row.remove(&col).unwrap_or_else(|| ty.default_value());
                        row.insert(col, apply_diff(&ty, cur, d));
                    }
                    self.set_row(table, uuid, Some(row))
                } else if r.get("delete").is_some() {
                    self.set_row(table, uuid, None)
                } else {
                    return Err(Error::InvalidMessage(format!("row-update2 {r}")));
                };
                changes.push(change);
            }
        }
        Ok(changes)
    }

    /// Applies `update3` params `[monitor-id, last-txn-id, table-updates2]`.
    pub fn apply_update3(&mut self, params: &Json) -> Result<Vec<RowChange>> {
        let (Some(txn), Some(updates)) = (params.get(1).and_then(Json::as_str), params.get(2))
        else {
            return Err(Error::InvalidMessage(format!("update3 {params}")));
        };
        let changes = self.apply_update2(updates)?;
        self.last_txn_id = Some(txn.to_string());
        Ok(changes)
    }

    /// Records the last transaction id of a `monitor_cond_since` reply.
    pub fn set_last_txn_id(&mut self, id: Option<String>) {
        self.last_txn_id = id;
    }

    fn set_row(&mut self, table: &str, uuid: Uuid, new: Option<Row>) -> RowChange {
        let t = self.tables.entry(table.to_string()).or_default();
        let old = match &new {
            Some(n) => t.insert(uuid, n.clone()),
            None => t.remove(&uuid),
        };
        let kind = match (&old, &new) {
            (None, _) => ChangeKind::Insert,
            (Some(_), Some(_)) => ChangeKind::Modify,
            (Some(_), None) => ChangeKind::Delete,
        };
        RowChange {
            table: table.to_string(),
            uuid,
            kind,
            old,
            new,
        }
    }
}

/// Applies an `update2` column diff (RFC 7047bis / ovsdb-server(7)): scalars are replaced;
/// set elements present in the diff are toggled; map pairs are added when the key is new,
/// removed when key and value match, replaced when the value differs.
fn apply_diff(ty: &ColumnType, cur: Value, diff: Value) -> Value {
    if ty.is_scalar() {
        return ty.normalize(diff);
    }
    match (ty.normalize(cur), ty.normalize(diff)) {
        (Value::Set(mut s), Value::Set(d)) => {
            for a in d {
                if !s.remove(&a) {
                    s.insert(a);
                }
            }
            Value::Set(s)
        }
        (Value::Map(mut m), Value::Map(d)) => {
            for (k, v) in d {
                match m.get(&k) {
                    Some(old) if *old == v => {
                        m.remove(&k);
                    }
                    _ => {
                        m.insert(k, v);
                    }
                }
            }
            Value::Map(m)
        }
        (_, d) => d,
    }
}

/// A transaction being built from a replica: operations, plus `wait`s proving that what they
/// were computed from is still current. If any row changed meanwhile, the server fails the
/// `wait` and the whole transaction; [`crate::ops::parse_transact_result`] reports
/// [`Error::Stale`], and the caller rebuilds from the updated replica and retries.
#[derive(Debug)]
pub struct Txn<'r> {
    replica: &'r Replica,
    /// The `wait`s go first, so they see the database as it was read, not as the
    /// transaction's own earlier operations left it.
    waits: Vec<Operation>,
    ops: Vec<Operation>,
}

impl<'r> Txn<'r> {
    /// An empty transaction over `replica`.
    pub fn new(replica: &'r Replica) -> Self {
        Txn {
            replica,
            waits: vec![],
            ops: vec![],
        }
    }

    /// Proves that `columns` of the row are as the replica has them (or that the row does not
    /// exist, if the replica has no such row).
    pub fn verify(&mut self, table: &str, uuid: Uuid, columns: &[&str]) -> &mut Self {
        let rows = match self.replica.get(table, &uuid) {
            Some(row) => vec![columns
                .iter()
                .filter_map(|c| row.get(*c).map(|v| (c.to_string(), v.clone())))
                .collect()],
            None => vec![],
        };
        self.waits.push(Operation::Wait {
            table: table.to_string(),
            conditions: vec![Condition::uuid(uuid)],
            columns: columns.iter().map(|c| c.to_string()).collect(),
            until: WaitUntil::Eq,
            rows,
            timeout_ms: Some(0),
        });
        self
    }

    /// Proves the set of rows of `table` is exactly what the replica has (nothing inserted or
    /// deleted), comparing `_uuid` only.
    pub fn verify_rows(&mut self, table: &str) -> &mut Self {
        let rows: Vec<Row> = self
            .replica
            .rows(table)
            .map(|(u, _)| [("_uuid".to_string(), Value::uuid(*u))].into())
            .collect();
        self.waits.push(Operation::Wait {
            table: table.to_string(),
            conditions: vec![],
            columns: vec!["_uuid".into()],
            until: WaitUntil::Eq,
            rows,
            timeout_ms: Some(0),
        });
        self
    }

    /// Proves that no row of `table` matches `conditions` (e.g. no bridge of that name yet).
    pub fn verify_absent(&mut self, table: &str, conditions: Vec<Condition>) -> &mut Self {
        self.waits.push(Operation::Wait {
            table: table.to_string(),
            conditions,
            columns: vec!["_uuid".into()],
            until: WaitUntil::Eq,
            rows: vec![],
            timeout_ms: Some(0),
        });
        self
    }

    /// Adds an operation.
    pub fn push(&mut self, op: Operation) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Nothing but verifications: nothing to send.
    pub fn is_noop(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations to send: the verifications first, then the changes.
    pub fn into_ops(self) -> Vec<Operation> {
        let mut all = self.waits;
        all.extend(self.ops);
        all
    }
}

/// The set of uuids a uuid-set column holds.
pub fn uuid_set(v: Option<&Value>) -> BTreeSet<Uuid> {
    v.map(|v| v.atoms().into_iter().filter_map(Atom::as_uuid).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Arc<DatabaseSchema> {
        Arc::new(
            DatabaseSchema::from_json(&json!({
                "name": "T", "version": "1",
                "tables": {"A": {"columns": {
                    "name": {"type": "string"},
                    "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                    "ids": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}
                }}}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn update2_diffs_apply() {
        let mut r = Replica::new(schema());
        let u = Uuid::new_v4();
        let us = u.to_string();
        let c = r
            .apply_update2(&json!({"A": {us.clone(): {"initial": {"name": "a", "tags": "x", "ids": ["map", [["k", "v"], ["j", "w"]]]}}}}))
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Insert);
        assert_eq!(r.get("A", &u).unwrap()["tags"], Value::set(["x"]));
        r.apply_update2(&json!({"A": {us.clone(): {"modify": {
            "name": "b", "tags": ["set", ["x", "y"]], "ids": ["map", [["k", "v"], ["j", "z"], ["n", "1"]]]}}}}))
            .unwrap();
        let row = r.get("A", &u).unwrap();
        assert_eq!(row["name"], Value::from("b"));
        assert_eq!(row["tags"], Value::set(["y"]));
        assert_eq!(row["ids"], Value::map([("j", "z"), ("n", "1")]));
        let c = r
            .apply_update2(&json!({"A": {us: {"delete": null}}}))
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Delete);
        assert!(r.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_updates_never_panic(
            kind in proptest::sample::select(vec!["initial", "insert", "modify", "delete", "old", "new"]),
            col in proptest::sample::select(vec!["name", "tags", "ids", "nope"]),
            val in proptest::sample::select(vec![
                json!(1), json!("s"), json!(["set", ["a", 1]]), json!(["map", [["k", "v"]]]),
                json!(["map", [["k"]]]), json!(["uuid", "x"]), json!(null), json!({"a": 1}),
            ]),
            twice in proptest::bool::ANY,
        ) {
            let mut r = Replica::new(schema());
            let u = Uuid::nil().to_string();
            let upd = json!({"A": {u: {kind: {col: val}}}});
            for _ in 0..(1 + twice as usize) {
                let _ = r.apply_update2(&upd);
                let _ = r.apply_update(&upd);
            }
        }
    }

    #[test]
    fn bad_updates_are_errors() {
        let mut r = Replica::new(schema());
        assert!(r.apply_update2(&json!({"Nope": {}})).is_err());
        assert!(r
            .apply_update2(&json!({"A": {"not-a-uuid": {"insert": {}}}}))
            .is_err());
        assert!(r
            .apply_update2(&json!({"A": {Uuid::new_v4().to_string(): {"modify": {"name": "x"}}}}))
            .is_err());
        assert!(r.apply_update(&json!([])).is_err());
    }
}
