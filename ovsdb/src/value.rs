//! Typed OVSDB data (RFC 7047 §5.1): atoms, sets, maps, `uuid` and `named-uuid`, with serde.
//!
//! Sets and maps are kept sorted (`BTreeSet`/`BTreeMap`) so that equal data compare equal
//! whatever order the server sent them in. On the wire a one-element set may be a bare atom;
//! [`crate::schema::ColumnType::normalize`] turns a decoded value into its column's canonical
//! shape.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::error::{Error, Result};

/// One atom.
#[derive(Debug, Clone)]
pub enum Atom {
    /// `integer`
    Integer(i64),
    /// `real`
    Real(f64),
    /// `boolean`
    Boolean(bool),
    /// `string`
    String(String),
    /// `["uuid", "..."]`
    Uuid(Uuid),
    /// `["named-uuid", "..."]`: a row inserted earlier in the same transaction.
    NamedUuid(String),
}

impl Atom {
    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// Decodes an atom.
    pub fn from_json(v: &Json) -> Result<Atom> {
        match v {
            Json::Bool(b) => Ok(Atom::Boolean(*b)),
            Json::String(s) => Ok(Atom::String(s.clone())),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Ok(Atom::Integer(i)),
                None => n
                    .as_f64()
                    .map(Atom::Real)
                    .ok_or_else(|| Error::InvalidValue(format!("number {n}"))),
            },
            Json::Array(a) => match (a.first().and_then(Json::as_str), a.get(1), a.len()) {
                (Some("uuid"), Some(Json::String(s)), 2) => Uuid::parse_str(s)
                    .map(Atom::Uuid)
                    .map_err(|_| Error::InvalidValue(format!("uuid {s:?}"))),
                (Some("named-uuid"), Some(Json::String(s)), 2) => Ok(Atom::NamedUuid(s.clone())),
                _ => Err(Error::InvalidValue(format!("not an atom: {v}"))),
            },
            _ => Err(Error::InvalidValue(format!("not an atom: {v}"))),
        }
    }

    /// Encodes an atom.
    pub fn to_json(&self) -> Json {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => json!(["uuid", u.to_string()]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    /// The string, if this is a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer atom.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The uuid, if this is a uuid atom.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }
}

// Reals compare with `total_cmp` so atoms have a total order and can live in sorted sets.
impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}
impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Atom {}

impl From<&str> for Atom {
    fn from(s: &str) -> Self {
        Atom::String(s.to_string())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Self {
        Atom::String(s)
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Self {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Self {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Self {
        Atom::Uuid(u)
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Integer(i) => write!(f, "{i}"),
            Atom::Real(r) => write!(f, "{r}"),
            Atom::Boolean(b) => write!(f, "{b}"),
            Atom::String(s) => write!(f, "{s:?}"),
            Atom::Uuid(u) => write!(f, "{u}"),
            Atom::NamedUuid(n) => write!(f, "@{n}"),
        }
    }
}

/// A datum: one atom, a set or a map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// A single atom (also the wire form of a one-element set).
    Atom(Atom),
    /// `["set", [...]]`
    Set(BTreeSet<Atom>),
    /// `["map", [[k, v], ...]]`
    Map(BTreeMap<Atom, Atom>),
}

impl Value {
    /// Decodes a datum.
    pub fn from_json(v: &Json) -> Result<Value> {
        if let Json::Array(a) = v {
            match (a.first().and_then(Json::as_str), a.get(1), a.len()) {
                (Some("set"), Some(Json::Array(items)), 2) => {
                    return items
                        .iter()
                        .map(Atom::from_json)
                        .collect::<Result<_>>()
                        .map(Value::Set)
                }
                (Some("map"), Some(Json::Array(pairs)), 2) => {
                    let mut m = BTreeMap::new();
                    for p in pairs {
                        match p.as_array().map(Vec::as_slice) {
                            Some([k, v]) => {
                                m.insert(Atom::from_json(k)?, Atom::from_json(v)?);
                            }
                            _ => return Err(Error::InvalidValue(format!("map pair {p}"))),
                        }
                    }
                    return Ok(Value::Map(m));
                }
                _ => {}
            }
        }
        Atom::from_json(v).map(Value::Atom)
    }

    /// Encodes a datum.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Atom(a) => a.to_json(),
            Value::Set(s) => json!(["set", s.iter().map(Atom::to_json).collect::<Vec<_>>()]),
            Value::Map(m) => json!([
                "map",
                m.iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// The empty set (also the empty optional value).
    pub fn empty() -> Value {
        Value::Set(BTreeSet::new())
    }

    /// A set of atoms.
    pub fn set<A: Into<Atom>>(items: impl IntoIterator<Item = A>) -> Value {
        Value::Set(items.into_iter().map(Into::into).collect())
    }

    /// A map of atoms.
    pub fn map<K: Into<Atom>, V: Into<Atom>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// A uuid reference.
    pub fn uuid(u: Uuid) -> Value {
        Value::Atom(Atom::Uuid(u))
    }

    /// A reference to a row inserted earlier in the same transaction.
    pub fn named(name: &str) -> Value {
        Value::Atom(Atom::NamedUuid(name.to_string()))
    }

    /// The elements, viewing an atom as a one-element set (maps give their keys).
    pub fn atoms(&self) -> Vec<&Atom> {
        match self {
            Value::Atom(a) => vec![a],
            Value::Set(s) => s.iter().collect(),
            Value::Map(m) => m.keys().collect(),
        }
    }

    /// The single atom of an atom or one-element set.
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Value::Atom(a) => Some(a),
            Value::Set(s) if s.len() == 1 => s.iter().next(),
            _ => None,
        }
    }

    /// The string of a scalar string value.
    pub fn as_str(&self) -> Option<&str> {
        self.as_atom()?.as_str()
    }

    /// The integer of a scalar integer value.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_atom()?.as_i64()
    }

    /// The uuid of a scalar uuid value.
    pub fn as_uuid(&self) -> Option<Uuid> {
        self.as_atom()?.as_uuid()
    }

    /// The map, if this is one (an empty set is an empty map on the wire).
    pub fn as_map(&self) -> Option<BTreeMap<Atom, Atom>> {
        match self {
            Value::Map(m) => Some(m.clone()),
            Value::Set(s) if s.is_empty() => Some(BTreeMap::new()),
            _ => None,
        }
    }

    /// Looks up a string key in a map value.
    pub fn map_get(&self, key: &str) -> Option<&Atom> {
        match self {
            Value::Map(m) => m.get(&Atom::from(key)),
            _ => None,
        }
    }
}

impl From<Atom> for Value {
    fn from(a: Atom) -> Self {
        Value::Atom(a)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Atom(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Atom(s.into())
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Atom(i.into())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Atom(b.into())
    }
}

impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}
impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Atom::from_json(&Json::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Value::from_json(&Json::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A row: column name → datum.
pub type Row = BTreeMap<String, Value>;

/// Decodes a row object, without a schema.
pub fn row_from_json(v: &Json) -> Result<Row> {
    let obj = v
        .as_object()
        .ok_or_else(|| Error::InvalidValue(format!("row is not an object: {v}")))?;
    obj.iter()
        .map(|(k, v)| Ok((k.clone(), Value::from_json(v)?)))
        .collect()
}

/// Encodes a row object.
pub fn row_to_json(row: &Row) -> Json {
    Json::Object(row.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_forms() {
        let u = Uuid::new_v4();
        let cases = [
            (json!(5), Value::from(5)),
            (json!("x"), Value::from("x")),
            (json!(["uuid", u.to_string()]), Value::uuid(u)),
            (json!(["named-uuid", "row1"]), Value::named("row1")),
            (json!(["set", [1, 2]]), Value::set([1i64, 2])),
            (json!(["map", [["a", "b"]]]), Value::map([("a", "b")])),
        ];
        for (j, v) in cases {
            assert_eq!(Value::from_json(&j).unwrap(), v);
            assert_eq!(v.to_json(), j);
            let via_serde: Value = serde_json::from_value(j.clone()).unwrap();
            assert_eq!(serde_json::to_value(&via_serde).unwrap(), j);
        }
        assert!(Value::from_json(&json!(["uuid", "nope"])).is_err());
        assert!(Value::from_json(&json!({"a": 1})).is_err());
        assert!(Value::from_json(&json!(["map", [["a"]]])).is_err());
    }

    fn arb_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|i| json!(i)),
            any::<bool>().prop_map(|b| json!(b)),
            "[a-z-]{0,10}".prop_map(|s| json!(s)),
            Just(json!("uuid")),
            Just(json!("set")),
            Just(json!("map")),
            Just(json!("named-uuid")),
            Just(json!("550e8400-e29b-41d4-a716-446655440000")),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_round_trips(j in arb_json()) {
            if let Ok(v) = Value::from_json(&j) {
                let again = Value::from_json(&v.to_json()).unwrap();
                prop_assert_eq!(again, v);
            }
        }
    }
}
