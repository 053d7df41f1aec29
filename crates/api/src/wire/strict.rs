//! How request bodies become DTOs. Two steps instead of `serde_json::from_slice::<T>`:
//! - into a `serde_json::Value` first, so serde_json's nesting limit (128) applies to every
//!   member, known or not (skipping an unknown member has no depth limit of its own);
//! - then into `T` through [`Strict`], which refuses a structure written as a JSON array of its
//!   fields. serde's derived deserializers accept that form (`[true]` for
//!   `{"EmailForwardingEnabled":true}`), and no AWS client sends it: to us it is a client
//!   mistake, and it must not change anything.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{
    DeserializeOwned, Deserializer, Error as _, IntoDeserializer, Unexpected, Visitor,
};
use serde_json::Value;

/// Parses `bytes` as JSON into `T`, strictly (see the module docs).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let Unique(value) = serde_json::from_slice(bytes)?;
    T::deserialize(Strict(value))
}

/// A JSON value read with every object's members unique: `serde_json::Value` keeps the last
/// of two equal members, and the two may have been meant for different readers.
struct Unique(Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique(Value::Null))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Unique, E> {
        Ok(Unique(Value::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Unique, E> {
        Ok(Unique(Value::from(n)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Unique, E> {
        Ok(Unique(Value::from(n)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Unique, E> {
        Ok(Unique(Value::from(n)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Unique, E> {
        Ok(Unique(Value::String(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Unique, E> {
        Ok(Unique(Value::String(s)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Unique(Value::Array(items)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Unique(v) = map.next_value()?;
            if members.insert(key.clone(), v).is_some() {
                return Err(A::Error::custom(format!("duplicate member `{key}`")));
            }
        }
        Ok(Unique(Value::Object(members)))
    }
}

/// A JSON value whose structures must be JSON objects.
struct Strict(Value);

impl<'de> IntoDeserializer<'de, serde_json::Error> for Strict {
    type Deserializer = Strict;
    fn into_deserializer(self) -> Strict {
        self
    }
}

fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Other("number"),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

impl<'de> Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => n.deserialize_any(visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(Strict));
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Object(members) => {
                let mut map =
                    MapDeserializer::new(members.into_iter().map(|(k, v)| (k, Strict(v))));
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match &self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(serde_json::Error::invalid_type(
                unexpected(other),
                &"a structure (a JSON object)",
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::input;

    #[test]
    fn structures_must_be_objects_and_nesting_is_bounded() {
        let ok: input::PutEmailIdentityFeedbackAttributesRequest =
            from_slice(br#"{"EmailForwardingEnabled":true}"#).unwrap();
        assert_eq!(ok.email_forwarding_enabled, Some(true));
        for bad in [
            &br#"[true]"#[..],
            br#"["new.example.com",null,null,null]"#,
            br#"{"EmailIdentity":"a.example.com","Tags":[["team","matrix"]]}"#,
        ] {
            let e = from_slice::<input::CreateEmailIdentityRequest>(bad)
                .err()
                .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(bad)));
            assert!(e.to_string().contains("expected a structure"), "{e}");
        }
        let deep = format!(
            "{{\"EmailIdentity\":\"a.example.com\",\"Deep\":{}1{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let e = from_slice::<input::CreateEmailIdentityRequest>(deep.as_bytes())
            .err()
            .expect("10 000-deep nesting in an unknown member is refused");
        assert!(e.to_string().contains("recursion limit"), "{e}");
        let listed: input::ListEmailIdentitiesRequest =
            from_slice(br#"{"PageSize":7,"Filter":{"FilterKey":"v"}}"#).unwrap();
        assert_eq!(listed.page_size, Some(7));
        assert!(from_slice::<input::ListEmailIdentitiesRequest>(br#"{"Filter":[1]}"#).is_err());
        let e = from_slice::<input::PutEmailIdentityDkimAttributesRequest>(
            br#"{"SigningEnabled":true,"SigningEnabled":false}"#,
        )
        .err()
        .expect("a member given twice is refused");
        assert!(e.to_string().contains("duplicate member"), "{e}");
    }
}
