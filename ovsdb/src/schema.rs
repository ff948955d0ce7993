//! Database schemas (RFC 7047 §3.2): parsing, and checking values and operations against them
//! before anything is sent, so an unknown table or column is a typed error on our side.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::ops::{Mutator, Operation};
use crate::value::{Atom, Row, Value};

/// A database schema.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    /// Database name (`Open_vSwitch`).
    pub name: String,
    /// Schema version.
    pub version: String,
    /// Tables by name.
    pub tables: BTreeMap<String, TableSchema>,
}

/// One table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// Columns by name (without the implicit `_uuid` and `_version`).
    pub columns: BTreeMap<String, ColumnSchema>,
    /// Root tables keep unreferenced rows; others are garbage-collected.
    pub is_root: bool,
}

/// One column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    /// Its type.
    pub ty: ColumnType,
    /// Whether the column may be changed after insert.
    pub mutable: bool,
}

/// A column type: key (and value for maps) with cardinality bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    /// Key (or element) type.
    pub key: BaseType,
    /// Value type, for maps.
    pub value: Option<BaseType>,
    /// Minimum number of elements (0 or 1).
    pub min: u64,
    /// Maximum number of elements; `None` is unlimited.
    pub max: Option<u64>,
}

/// An atomic type with its constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseType {
    /// The atomic type.
    pub atomic: AtomicType,
    /// Allowed values, if restricted.
    pub enum_: Option<BTreeSet<Atom>>,
    /// Integer bounds.
    pub min_integer: Option<i64>,
    /// Integer bounds.
    pub max_integer: Option<i64>,
    /// Referenced table, for uuids.
    pub ref_table: Option<String>,
}

/// RFC 7047 atomic types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicType {
    /// `integer`
    Integer,
    /// `real`
    Real,
    /// `boolean`
    Boolean,
    /// `string`
    String,
    /// `uuid`
    Uuid,
}

impl AtomicType {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "integer" => Self::Integer,
            "real" => Self::Real,
            "boolean" => Self::Boolean,
            "string" => Self::String,
            "uuid" => Self::Uuid,
            _ => return Err(Error::InvalidSchema(format!("atomic type {s:?}"))),
        })
    }
}

impl BaseType {
    fn parse(v: &Json) -> Result<Self> {
        if let Some(s) = v.as_str() {
            return Ok(BaseType::plain(AtomicType::parse(s)?));
        }
        let t = v
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::InvalidSchema(format!("base type {v}")))?;
        let mut b = BaseType::plain(AtomicType::parse(t)?);
        if let Some(e) = v.get("enum") {
            b.enum_ = Some(Value::from_json(e)?.atoms().into_iter().cloned().collect());
        }
        b.min_integer = v.get("minInteger").and_then(Json::as_i64);
        b.max_integer = v.get("maxInteger").and_then(Json::as_i64);
        b.ref_table = v.get("refTable").and_then(Json::as_str).map(str::to_string);
        Ok(b)
    }

    fn plain(atomic: AtomicType) -> Self {
        BaseType {
            atomic,
            enum_: None,
            min_integer: None,
            max_integer: None,
            ref_table: None,
        }
    }

    /// Checks one atom (a `named-uuid` passes for a uuid: the server resolves it).
    pub fn check(&self, a: &Atom) -> std::result::Result<(), String> {
        let ok = matches!(
            (self.atomic, a),
            (AtomicType::Integer, Atom::Integer(_))
                | (AtomicType::Real, Atom::Real(_) | Atom::Integer(_))
                | (AtomicType::Boolean, Atom::Boolean(_))
                | (AtomicType::String, Atom::String(_))
                | (AtomicType::Uuid, Atom::Uuid(_) | Atom::NamedUuid(_))
        );
        if !ok {
            return Err(format!("{a} is not of type {:?}", self.atomic));
        }
        if let Some(e) = &self.enum_ {
            if !e.contains(a) {
                return Err(format!("{a} is not one of the allowed values"));
            }
        }
        if let Atom::Integer(i) = a {
            if self.min_integer.is_some_and(|m| *i < m) || self.max_integer.is_some_and(|m| *i > m)
            {
                return Err(format!("{i} is out of range"));
            }
        }
        Ok(())
    }

    fn coerce(&self, a: Atom) -> Atom {
        match (self.atomic, a) {
            (AtomicType::Real, Atom::Integer(i)) => Atom::Real(i as f64),
            (_, a) => a,
        }
    }
}

impl ColumnType {
    fn parse(v: &Json) -> Result<Self> {
        if v.is_string() {
            return Ok(ColumnType {
                key: BaseType::parse(v)?,
                value: None,
                min: 1,
                max: Some(1),
            });
        }
        let key = BaseType::parse(
            v.get("key")
                .ok_or_else(|| Error::InvalidSchema(format!("column type {v}")))?,
        )?;
        let value = v.get("value").map(BaseType::parse).transpose()?;
        let min = v.get("min").and_then(Json::as_u64).unwrap_or(1);
        let max = match v.get("max") {
            None => Some(1),
            Some(Json::String(s)) if s == "unlimited" => None,
            Some(m) => Some(
                m.as_u64()
                    .ok_or_else(|| Error::InvalidSchema(format!("max {m}")))?,
            ),
        };
        Ok(ColumnType {
            key,
            value,
            min,
            max,
        })
    }

    /// A map column.
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// Exactly one atom (neither optional nor a set).
    pub fn is_scalar(&self) -> bool {
        self.value.is_none() && self.min == 1 && self.max == Some(1)
    }

    /// Turns a decoded datum into this type's canonical shape: scalars as [`Value::Atom`],
    /// sets (including optional values) as [`Value::Set`], maps as [`Value::Map`]; integers
    /// become reals in real columns.
    pub fn normalize(&self, v: Value) -> Value {
        match (self.is_map(), self.is_scalar(), v) {
            (true, _, Value::Set(s)) if s.is_empty() => Value::Map(BTreeMap::new()),
            (true, _, Value::Map(m)) => {
                let vt = self.value.as_ref().unwrap_or(&self.key);
                Value::Map(
                    m.into_iter()
                        .map(|(k, v)| (self.key.coerce(k), vt.coerce(v)))
                        .collect(),
                )
            }
            (false, true, Value::Set(s)) if s.len() == 1 => Value::Atom(
                self.key
                    .coerce(s.into_iter().next().unwrap_or(Atom::Integer(0))),
            ),
            (false, true, Value::Atom(a)) => Value::Atom(self.key.coerce(a)),
            (false, false, Value::Atom(a)) => Value::Set([self.key.coerce(a)].into()),
            (false, false, Value::Set(s)) => {
                Value::Set(s.into_iter().map(|a| self.key.coerce(a)).collect())
            }
            (_, _, v) => v,
        }
    }

    /// The value a column has when not set: the type's default (RFC 7047 §5.2.1).
    pub fn default_value(&self) -> Value {
        if self.min == 0 {
            return if self.is_map() {
                Value::Map(BTreeMap::new())
            } else {
                Value::empty()
            };
        }
        let a = match &self.key.enum_ {
            Some(e) if !e.is_empty() => e.iter().next().cloned().unwrap_or(Atom::Integer(0)),
            _ => match self.key.atomic {
                AtomicType::Integer => Atom::Integer(0),
                AtomicType::Real => Atom::Real(0.0),
                AtomicType::Boolean => Atom::Boolean(false),
                AtomicType::String => Atom::String(String::new()),
                AtomicType::Uuid => Atom::Uuid(uuid::Uuid::nil()),
            },
        };
        Value::Atom(a)
    }

    /// Checks a whole datum: element types and cardinality.
    pub fn check(&self, v: &Value) -> std::result::Result<(), String> {
        let n = match v {
            Value::Atom(a) => {
                if self.is_map() {
                    return Err("an atom where a map is expected".into());
                }
                self.key.check(a)?;
                1
            }
            Value::Set(s) => {
                if self.is_map() && !s.is_empty() {
                    return Err("a set where a map is expected".into());
                }
                for a in s {
                    self.key.check(a)?;
                }
                s.len()
            }
            Value::Map(m) => {
                let Some(vt) = &self.value else {
                    return Err("a map where no map is expected".into());
                };
                for (k, v) in m {
                    self.key.check(k)?;
                    vt.check(v)?;
                }
                m.len()
            }
        } as u64;
        if n < self.min || self.max.is_some_and(|m| n > m) {
            return Err(format!(
                "{n} elements, allowed {}..{:?}",
                self.min, self.max
            ));
        }
        Ok(())
    }
}

impl DatabaseSchema {
    /// Parses the `get_schema` result.
    pub fn from_json(v: &Json) -> Result<Self> {
        let name = v
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::InvalidSchema("no name".into()))?;
        let version = v.get("version").and_then(Json::as_str).unwrap_or("");
        let tables_json = v
            .get("tables")
            .and_then(Json::as_object)
            .ok_or_else(|| Error::InvalidSchema("no tables".into()))?;
        let mut tables = BTreeMap::new();
        for (tname, t) in tables_json {
            let cols_json = t
                .get("columns")
                .and_then(Json::as_object)
                .ok_or_else(|| Error::InvalidSchema(format!("table {tname} has no columns")))?;
            let mut columns = BTreeMap::new();
            for (cname, c) in cols_json {
                let ty = ColumnType::parse(
                    c.get("type")
                        .ok_or_else(|| Error::InvalidSchema(format!("{tname}.{cname}")))?,
                )?;
                let mutable = c.get("mutable").and_then(Json::as_bool).unwrap_or(true);
                columns.insert(cname.clone(), ColumnSchema { ty, mutable });
            }
            let is_root = t.get("isRoot").and_then(Json::as_bool).unwrap_or(false);
            tables.insert(tname.clone(), TableSchema { columns, is_root });
        }
        Ok(DatabaseSchema {
            name: name.to_string(),
            version: version.to_string(),
            tables,
        })
    }

    /// A table, or [`Error::UnknownTable`].
    pub fn table(&self, name: &str) -> Result<&TableSchema> {
        self.tables
            .get(name)
            .ok_or_else(|| Error::UnknownTable(name.to_string()))
    }

    /// A column's type; `_uuid` and `_version` are the implicit uuid columns.
    pub fn column(&self, table: &str, column: &str) -> Result<ColumnType> {
        if column == "_uuid" || column == "_version" {
            return Ok(ColumnType {
                key: BaseType::plain(AtomicType::Uuid),
                value: None,
                min: 1,
                max: Some(1),
            });
        }
        self.table(table)?
            .columns
            .get(column)
            .map(|c| c.ty.clone())
            .ok_or_else(|| Error::UnknownColumn {
                table: table.to_string(),
                column: column.to_string(),
            })
    }

    /// Normalizes every value of a row received for `table` (see [`ColumnType::normalize`]).
    pub fn normalize_row(&self, table: &str, row: Row) -> Result<Row> {
        row.into_iter()
            .map(|(c, v)| {
                let ty = self.column(table, &c)?;
                Ok((c, ty.normalize(v)))
            })
            .collect()
    }

    fn check_row(&self, table: &str, row: &Row, partial_ok: bool) -> Result<()> {
        for (c, v) in row {
            let ty = self.column(table, c)?;
            if c.starts_with('_') && !partial_ok {
                return Err(mismatch(
                    table,
                    c,
                    "implicit columns cannot be written".into(),
                ));
            }
            ty.check(v).map_err(|r| mismatch(table, c, r))?;
        }
        Ok(())
    }

    /// Checks an operation: its table and columns exist, its values fit their columns.
    pub fn check_operation(&self, op: &Operation) -> Result<()> {
        let Some(table) = op.table() else {
            return Ok(());
        };
        self.table(table)?;
        for cond in op.conditions() {
            let ty = self.column(table, &cond.column)?;
            // A condition's value may be a subset/superset (includes) of any size: check atoms.
            for a in cond.value.atoms() {
                ty.key
                    .check(a)
                    .map_err(|r| mismatch(table, &cond.column, r))?;
            }
        }
        match op {
            Operation::Insert { row, .. } | Operation::Update { row, .. } => {
                self.check_row(table, row, false)?
            }
            Operation::Select {
                columns: Some(cols),
                ..
            } => {
                for c in cols {
                    self.column(table, c)?;
                }
            }
            Operation::Wait { columns, rows, .. } => {
                for c in columns {
                    self.column(table, c)?;
                }
                for r in rows {
                    self.check_row(table, r, true)?;
                }
            }
            Operation::Mutate { mutations, .. } => {
                for m in mutations {
                    let ty = self.column(table, &m.column)?;
                    let r = match (m.mutator, &m.value) {
                        (Mutator::Insert, v) if ty.is_map() => ColumnType {
                            min: 0,
                            max: None,
                            ..ty.clone()
                        }
                        .check(v),
                        (Mutator::Delete, Value::Map(_)) if ty.is_map() => ColumnType {
                            min: 0,
                            max: None,
                            ..ty.clone()
                        }
                        .check(&m.value),
                        (Mutator::Insert | Mutator::Delete, v) => {
                            v.atoms().into_iter().try_for_each(|a| ty.key.check(a))
                        }
                        (_, v) => v.atoms().into_iter().try_for_each(|a| ty.key.check(a)),
                    };
                    r.map_err(|r| mismatch(table, &m.column, r))?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn mismatch(table: &str, column: &str, reason: String) -> Error {
    Error::TypeMismatch {
        table: table.to_string(),
        column: column.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Condition;

    fn vswitch() -> Option<DatabaseSchema> {
        let text = std::fs::read_to_string("/usr/share/openvswitch/vswitch.ovsschema").ok()?;
        Some(DatabaseSchema::from_json(&serde_json::from_str(&text).ok()?).expect("parses"))
    }

    #[test]
    fn parses_vswitch_schema_and_checks_ops() {
        let s = vswitch().expect("vswitch.ovsschema: install openvswitch-switch");
        assert_eq!(s.name, "Open_vSwitch");
        let ports = s.column("Bridge", "ports").unwrap();
        assert_eq!(ports.key.ref_table.as_deref(), Some("Port"));
        assert!(!ports.is_scalar() && !ports.is_map());
        assert!(s.column("Bridge", "other_config").unwrap().is_map());
        assert!(s.column("Bridge", "name").unwrap().is_scalar());
        let fail_mode = s.column("Bridge", "fail_mode").unwrap();
        assert!(fail_mode.check(&Value::set(["secure"])).is_ok());
        assert!(fail_mode.check(&Value::set(["bogus"])).is_err());

        let ok = Operation::insert(
            "Bridge",
            [("name", Value::from("br0"))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        );
        s.check_operation(&ok).unwrap();
        let bad_table = Operation::delete("Nope", vec![]);
        assert!(
            matches!(s.check_operation(&bad_table), Err(Error::UnknownTable(t)) if t == "Nope")
        );
        let bad_col = Operation::select("Bridge", vec![Condition::eq("nope", 1i64)], None);
        assert!(matches!(
            s.check_operation(&bad_col),
            Err(Error::UnknownColumn { .. })
        ));
        let bad_type = Operation::insert("Bridge", [("name".to_string(), Value::from(3))].into());
        assert!(matches!(
            s.check_operation(&bad_type),
            Err(Error::TypeMismatch { .. })
        ));
    }

    #[test]
    fn normalizes_wire_shapes() {
        let s = vswitch().expect("vswitch.ovsschema");
        let ports = s.column("Bridge", "ports").unwrap();
        let u = uuid::Uuid::new_v4();
        assert_eq!(
            ports.normalize(Value::uuid(u)),
            Value::Set([Atom::Uuid(u)].into())
        );
        let name = s.column("Bridge", "name").unwrap();
        assert_eq!(name.normalize(Value::set(["x"])), Value::from("x"));
        let oc = s.column("Bridge", "other_config").unwrap();
        assert_eq!(oc.normalize(Value::empty()), Value::Map(BTreeMap::new()));
    }
}
