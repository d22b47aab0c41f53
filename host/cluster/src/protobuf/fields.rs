//! Building a JSON object from a decoded protobuf message, one field at a time, by taking each
//! field out of the message; what is left must then be empty ([`Obj::done`]), so a field no
//! converter reads is refused, never dropped.
//!
//! Go's generated encoder writes every non-pointer field, zero or not: an empty string, a `0`,
//! a `false` and an empty struct all arrive. JSON clients omit those (`omitempty`), so the
//! converters do too where the Go field is a plain value ([`Obj::str`], [`Obj::int0`],
//! [`Obj::flag0`]) and keep a zero where the Go field is a pointer or has no `omitempty`
//! ([`Obj::int`], [`Obj::flag`]).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value};

/// A message held a field no converter reads: the name of the message type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unconverted(pub(super) &'static str);

/// Results of the converters.
pub(super) type Converted<T = Value> = Result<T, Unconverted>;

/// A JSON object under construction.
#[derive(Debug, Default)]
pub(super) struct Obj(Map<String, Value>);

impl Obj {
    /// Sets `key` to `value`.
    pub(super) fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.0.insert(key.to_owned(), value.into());
    }

    /// A string; an empty one is absent.
    pub(super) fn str(&mut self, key: &str, v: &mut Option<String>) {
        if let Some(s) = v.take().filter(|s| !s.is_empty()) {
            self.set(key, s);
        }
    }

    /// A number that is kept when zero (a Go pointer, or a field without `omitempty`).
    pub(super) fn int<T: Into<Value>>(&mut self, key: &str, v: &mut Option<T>) {
        if let Some(n) = v.take() {
            self.set(key, n);
        }
    }

    /// A number whose zero is absent (a Go value field with `omitempty`).
    pub(super) fn int0<T: Into<Value> + Default + PartialEq>(
        &mut self,
        key: &str,
        v: &mut Option<T>,
    ) {
        if let Some(n) = v.take().filter(|n| *n != T::default()) {
            self.set(key, n);
        }
    }

    /// A boolean that is kept when false (a Go pointer).
    pub(super) fn flag(&mut self, key: &str, v: &mut Option<bool>) {
        self.int(key, v);
    }

    /// A boolean whose `false` is absent (a Go value field with `omitempty`).
    pub(super) fn flag0(&mut self, key: &str, v: &mut Option<bool>) {
        self.int0(key, v);
    }

    /// A list of scalars; an empty one is absent.
    pub(super) fn strs<T: Into<Value>>(&mut self, key: &str, v: &mut Vec<T>) {
        let items = std::mem::take(v);
        if !items.is_empty() {
            self.set(
                key,
                Value::Array(items.into_iter().map(Into::into).collect()),
            );
        }
    }

    /// A map of strings; an empty one is absent.
    pub(super) fn map(&mut self, key: &str, v: &mut BTreeMap<String, String>) {
        let m = std::mem::take(v);
        if !m.is_empty() {
            self.set(
                key,
                Value::Object(m.into_iter().map(|(k, v)| (k, v.into())).collect()),
            );
        }
    }

    /// A map of bytes, each base64-encoded as JSON writes `[]byte`; an empty one is absent.
    pub(super) fn bytes_map(&mut self, key: &str, v: &mut BTreeMap<String, Vec<u8>>) {
        let m = std::mem::take(v);
        if !m.is_empty() {
            let encoded = m.into_iter().map(|(k, b)| (k, STANDARD.encode(b).into()));
            self.set(key, Value::Object(encoded.collect()));
        }
    }

    /// A map of quantities (`cpu: 500m`); an empty one is absent.
    pub(super) fn quantities(&mut self, key: &str, v: &mut BTreeMap<String, Quantity>) {
        let m = std::mem::take(v);
        if !m.is_empty() {
            let m = m.into_iter().map(|(k, q)| (k, quantity(q)));
            self.set(key, Value::Object(m.collect()));
        }
    }

    /// A quantity, as its string.
    pub(super) fn quantity(&mut self, key: &str, v: &mut Option<Quantity>) {
        if let Some(q) = v.take() {
            self.set(key, quantity(q));
        }
    }

    /// An `IntOrString`: a number or a string.
    pub(super) fn int_or_string(&mut self, key: &str, v: &mut Option<IntOrString>) {
        if let Some(v) = v.take() {
            self.set(key, int_or_string(v));
        }
    }

    /// A `Time`, as RFC 3339 to the second (the zero time is absent, as JSON's `null`).
    pub(super) fn time(&mut self, key: &str, v: &mut Option<Time>) {
        if let Some(t) = v.take().and_then(|t| timestamp(t.seconds, t.nanos, false)) {
            self.set(key, t);
        }
    }

    /// A `MicroTime`, as RFC 3339 to the microsecond (the zero time is absent).
    pub(super) fn micro_time(&mut self, key: &str, v: &mut Option<MicroTime>) {
        if let Some(t) = v.take().and_then(|t| timestamp(t.seconds, t.nanos, true)) {
            self.set(key, t);
        }
    }

    /// A nested message; present (possibly `{}`) when the message is.
    pub(super) fn obj<T>(
        &mut self,
        key: &str,
        v: &mut Option<T>,
        convert: impl FnOnce(T) -> Converted,
    ) -> Converted<()> {
        if let Some(m) = v.take() {
            self.set(key, convert(m)?);
        }
        Ok(())
    }

    /// A list of messages; an empty one is absent.
    pub(super) fn list<T>(
        &mut self,
        key: &str,
        v: &mut Vec<T>,
        convert: impl FnMut(T) -> Converted,
    ) -> Converted<()> {
        let items = std::mem::take(v);
        if !items.is_empty() {
            let items = items
                .into_iter()
                .map(convert)
                .collect::<Converted<Vec<_>>>()?;
            self.set(key, Value::Array(items));
        }
        Ok(())
    }

    /// A message Go embeds inline (`json:",inline"`): its fields join this object's.
    pub(super) fn inline<T>(
        &mut self,
        v: &mut Option<T>,
        convert: impl FnOnce(T) -> Converted,
    ) -> Converted<()> {
        if let Some(Value::Object(m)) = v.take().map(convert).transpose()? {
            self.0.extend(m);
        }
        Ok(())
    }

    /// The object, once `rest` (the message with every converted field taken out) is empty;
    /// otherwise the message set a field no converter reads, named `what`.
    pub(super) fn done<T: Default + PartialEq>(self, rest: T, what: &'static str) -> Converted {
        if rest == T::default() {
            Ok(Value::Object(self.0))
        } else {
            Err(Unconverted(what))
        }
    }
}

/// A quantity's JSON: its canonical string.
pub(super) fn quantity(q: Quantity) -> Value {
    q.string.unwrap_or_default().into()
}

/// An `IntOrString`'s JSON: type 1 is the string, anything else the number.
pub(super) fn int_or_string(v: IntOrString) -> Value {
    if v.r#type == Some(1) {
        v.str_val.unwrap_or_default().into()
    } else {
        v.int_val.unwrap_or_default().into()
    }
}

/// RFC 3339 in UTC, as Go's `metav1.Time` (seconds) or `metav1.MicroTime` (microseconds)
/// write it; `None` for the zero time (an empty message) and for times out of range.
fn timestamp(seconds: Option<i64>, nanos: Option<i32>, micro: bool) -> Option<String> {
    if seconds.is_none() && nanos.is_none() {
        return None;
    }
    let t = jiff::Timestamp::new(seconds.unwrap_or_default(), nanos.unwrap_or_default()).ok()?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Some(t.strftime(format).to_string())
}

/// Whether an encoded message holds nothing but zero values and empty messages: what Go's
/// encoder writes for a struct nobody set (a `status` a client sends on create, say).
pub(super) fn blank(mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        let Some(key) = varint(&mut buf) else {
            return false;
        };
        let zero = match key & 7 {
            0 => varint(&mut buf) == Some(0),
            1 | 5 => {
                let width = if key & 7 == 1 { 8 } else { 4 };
                match buf.split_at_checked(width) {
                    Some((v, rest)) => {
                        buf = rest;
                        v.iter().all(|b| *b == 0)
                    }
                    None => false,
                }
            }
            2 => {
                let len = varint(&mut buf).and_then(|l| usize::try_from(l).ok());
                match len.and_then(|l| buf.split_at_checked(l)) {
                    Some((inner, rest)) => {
                        buf = rest;
                        blank(inner)
                    }
                    None => false,
                }
            }
            _ => false,
        };
        if !zero {
            return false;
        }
    }
    true
}

/// Reads one base-128 varint off the front of `buf`.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::core::v1::{LoadBalancerStatus, ServiceStatus};
    use prost::Message;
    use serde_json::json;

    #[test]
    fn special_types_become_their_json() {
        let mut o = Obj::default();
        o.quantity(
            "q",
            &mut Some(Quantity {
                string: Some("500m".into()),
            }),
        );
        o.int_or_string(
            "n",
            &mut Some(IntOrString {
                r#type: Some(0),
                int_val: Some(8080),
                str_val: None,
            }),
        );
        o.int_or_string(
            "s",
            &mut Some(IntOrString {
                r#type: Some(1),
                int_val: None,
                str_val: Some("http".into()),
            }),
        );
        o.time(
            "t",
            &mut Some(Time {
                seconds: Some(1_700_000_000),
                nanos: Some(5),
            }),
        );
        o.micro_time(
            "m",
            &mut Some(MicroTime {
                seconds: Some(1_700_000_000),
                nanos: Some(123_456_789),
            }),
        );
        o.time("zero", &mut Some(Time::default()));
        o.bytes_map(
            "b",
            &mut BTreeMap::from([("k".to_owned(), b"\x00hi".to_vec())]),
        );
        o.str("empty", &mut Some(String::new()));
        o.int0("z", &mut Some(0i32));
        o.int("kept", &mut Some(0i32));
        o.flag0("f", &mut Some(false));
        o.flag("kf", &mut Some(false));
        o.strs("none", &mut Vec::<String>::new());
        assert_eq!(
            o.done((), "test").expect("converted"),
            json!({
                "q": "500m", "n": 8080, "s": "http",
                "t": "2023-11-14T22:13:20Z", "m": "2023-11-14T22:13:20.123456Z",
                "b": {"k": "AGhp"}, "kept": 0, "kf": false,
            })
        );
    }

    #[test]
    fn a_go_zero_status_is_blank_and_a_set_one_is_not() {
        let zero = ServiceStatus {
            load_balancer: Some(LoadBalancerStatus::default()),
            conditions: vec![],
        };
        assert!(blank(&zero.encode_to_vec()));
        let set = k8s_pb::api::core::v1::NamespaceStatus {
            phase: Some("Active".into()),
            conditions: vec![],
        };
        assert!(!blank(&set.encode_to_vec()));
        assert!(!blank(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
        assert!(!blank(&[0xff; 11]));
    }

    #[test]
    fn a_field_left_in_the_message_is_unconverted() {
        let rest = Quantity {
            string: Some("1".into()),
        };
        assert_eq!(
            Obj::default().done(rest, "Quantity"),
            Err(Unconverted("Quantity"))
        );
    }
}
