//! A small CouchDB-style selector for rich queries on the in-memory and embedded databases.
//!
//! `{"selector": {"owner": "bob", "size": {"$gt": 3}, "address.city": "Oslo"}}` matches JSON
//! values whose fields satisfy every condition. Supported operators: `$eq`, `$ne`, `$gt`,
//! `$gte`, `$lt`, `$lte`, `$exists`. Values that are not JSON objects never match.

use serde_json::{Map, Value};

use crate::{Error, Result};

/// A parsed selector.
#[derive(Debug)]
pub(crate) struct Selector {
    conditions: Vec<(Vec<String>, Condition)>,
}

#[derive(Debug)]
enum Condition {
    Eq(Value),
    Ne(Value),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    Exists(bool),
}

impl Selector {
    pub(crate) fn parse(query: &str) -> Result<Self> {
        let bad = |why: String| Error::Ledger(format!("invalid rich query {query:?}: {why}"));
        let json: Value = serde_json::from_str(query).map_err(|e| bad(e.to_string()))?;
        let selector = json
            .get("selector")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("expected an object with a \"selector\" object".into()))?;
        let mut conditions = Vec::new();
        collect(selector, &[], &mut conditions).map_err(bad)?;
        Ok(Self { conditions })
    }

    pub(crate) fn matches(&self, value: &[u8]) -> bool {
        let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(value) else {
            return false;
        };
        self.conditions.iter().all(|(path, cond)| {
            let mut field = Some(&doc);
            let mut found: Option<&Value> = None;
            for (i, part) in path.iter().enumerate() {
                found = field.and_then(|m| m.get(part));
                if i + 1 < path.len() {
                    field = found.and_then(Value::as_object);
                }
            }
            cond.holds(found)
        })
    }
}

fn collect(
    object: &Map<String, Value>,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Condition)>,
) -> std::result::Result<(), String> {
    for (name, value) in object {
        let mut path = prefix.to_vec();
        path.extend(name.split('.').map(str::to_owned));
        match value {
            Value::Object(ops) if ops.keys().all(|k| k.starts_with('$')) && !ops.is_empty() => {
                for (op, arg) in ops {
                    let cond = match op.as_str() {
                        "$eq" => Condition::Eq(arg.clone()),
                        "$ne" => Condition::Ne(arg.clone()),
                        "$gt" => Condition::Gt(arg.clone()),
                        "$gte" => Condition::Gte(arg.clone()),
                        "$lt" => Condition::Lt(arg.clone()),
                        "$lte" => Condition::Lte(arg.clone()),
                        "$exists" => {
                            Condition::Exists(arg.as_bool().ok_or("$exists takes true or false")?)
                        }
                        other => return Err(format!("unsupported operator {other}")),
                    };
                    out.push((path.clone(), cond));
                }
            }
            Value::Object(nested) => collect(nested, &path, out)?,
            other => out.push((path, Condition::Eq(other.clone()))),
        }
    }
    Ok(())
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Condition {
    fn holds(&self, found: Option<&Value>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match (self, found) {
            (Condition::Exists(want), v) => v.is_some() == *want,
            (Condition::Ne(x), v) => v != Some(x),
            (_, None) => false,
            (Condition::Eq(x), Some(v)) => v == x,
            (Condition::Gt(x), Some(v)) => compare(v, x) == Some(Greater),
            (Condition::Gte(x), Some(v)) => matches!(compare(v, x), Some(Greater | Equal)),
            (Condition::Lt(x), Some(v)) => compare(v, x) == Some(Less),
            (Condition::Lte(x), Some(v)) => matches!(compare(v, x), Some(Less | Equal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_by_equality_operators_and_nested_fields() {
        let s = Selector::parse(
            r#"{"selector":{"owner":"bob","size":{"$gte":3,"$lt":10},"address":{"city":"Oslo"}}}"#,
        )
        .unwrap();
        assert!(s.matches(br#"{"owner":"bob","size":3,"address":{"city":"Oslo"}}"#));
        assert!(!s.matches(br#"{"owner":"bob","size":10,"address":{"city":"Oslo"}}"#));
        assert!(!s.matches(br#"{"owner":"ann","size":3,"address":{"city":"Oslo"}}"#));
        assert!(!s.matches(b"not json"));
        let dotted =
            Selector::parse(r#"{"selector":{"address.city":"Oslo","x":{"$exists":false}}}"#)
                .unwrap();
        assert!(dotted.matches(br#"{"address":{"city":"Oslo"}}"#));
        assert!(!dotted.matches(br#"{"address":{"city":"Oslo"},"x":1}"#));
    }

    #[test]
    fn bad_queries_are_errors() {
        assert!(Selector::parse("{").is_err());
        assert!(Selector::parse(r#"{"fields":[]}"#).is_err());
        assert!(Selector::parse(r#"{"selector":{"a":{"$regex":"x"}}}"#).is_err());
    }
}
