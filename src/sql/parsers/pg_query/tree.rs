//! A compact, generic view of pg_query's parse tree.
//!
//! Every pg_query protobuf type derives `serde::Serialize`; this module is a
//! `serde::Serializer` that turns such a value into [`V`], a small tree whose
//! structs carry their type name (`"RangeVar"`, `"InsertStmt"`, ...) and
//! `&'static str` field names. Defaults (empty strings, `false`, `0`,
//! `None`, empty lists) are dropped and `Node` wrappers are unwrapped, so the
//! tree holds only what is set. It is several times cheaper to build than a
//! `serde_json::Value` and lets the walker in [`crate::sql::parsers::pg_query`] see every node
//! type without a hand-written match over ~270 of them.

use serde::ser::{self, Serialize};
use std::fmt;

/// Generic parse-tree value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Seq(Vec<V>),
    Struct(&'static str, Vec<(&'static str, V)>),
}

impl V {
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, V::Null)
    }
    /// Field of a struct.
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        match self {
            V::Struct(_, f) => f.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            V::Str(s) => Some(s),
            _ => None,
        }
    }
    pub(crate) fn struct_name(&self) -> Option<&'static str> {
        match self {
            V::Struct(n, _) => Some(n),
            _ => None,
        }
    }
}

/// Build the tree of any serializable value.
pub(crate) fn build<T: Serialize + ?Sized>(v: &T) -> Result<V, Error> {
    v.serialize(Builder)
}

#[derive(Debug)]
pub(crate) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Error {}
impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

pub(crate) struct Builder;

pub(crate) struct SeqB(Vec<V>);
pub(crate) struct StructB(&'static str, Vec<(&'static str, V)>);

fn finish_struct(name: &'static str, mut fields: Vec<(&'static str, V)>) -> V {
    // unwrap `Node { node: <variant> }`
    if name == "Node" && fields.len() <= 1 {
        return fields.pop().map_or(V::Null, |(_, v)| v);
    }
    V::Struct(name, fields)
}

impl ser::Serializer for Builder {
    type Ok = V;
    type Error = Error;
    type SerializeSeq = SeqB;
    type SerializeTuple = SeqB;
    type SerializeTupleStruct = SeqB;
    type SerializeTupleVariant = SeqB;
    type SerializeMap = SeqB;
    type SerializeStruct = StructB;
    type SerializeStructVariant = StructB;

    fn serialize_bool(self, v: bool) -> Result<V, Error> {
        Ok(if v { V::Bool(true) } else { V::Null })
    }
    fn serialize_i8(self, v: i8) -> Result<V, Error> {
        self.serialize_i64(v as i64)
    }
    fn serialize_i16(self, v: i16) -> Result<V, Error> {
        self.serialize_i64(v as i64)
    }
    fn serialize_i32(self, v: i32) -> Result<V, Error> {
        self.serialize_i64(v as i64)
    }
    fn serialize_i64(self, v: i64) -> Result<V, Error> {
        Ok(if v == 0 { V::Null } else { V::Int(v) })
    }
    fn serialize_u8(self, v: u8) -> Result<V, Error> {
        self.serialize_i64(v as i64)
    }
    fn serialize_u16(self, v: u16) -> Result<V, Error> {
        self.serialize_i64(v as i64)
    }
    fn serialize_u32(self, v: u32) -> Result<V, Error> {
        self.serialize_i64(v as i64)
    }
    fn serialize_u64(self, v: u64) -> Result<V, Error> {
        self.serialize_i64(i64::try_from(v).unwrap_or(i64::MAX))
    }
    fn serialize_f32(self, _v: f32) -> Result<V, Error> {
        Ok(V::Null)
    }
    fn serialize_f64(self, _v: f64) -> Result<V, Error> {
        Ok(V::Null)
    }
    fn serialize_char(self, v: char) -> Result<V, Error> {
        Ok(V::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<V, Error> {
        Ok(if v.is_empty() {
            V::Null
        } else {
            V::Str(v.to_string())
        })
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<V, Error> {
        Ok(V::Null)
    }
    fn serialize_none(self) -> Result<V, Error> {
        Ok(V::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<V, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<V, Error> {
        Ok(V::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<V, Error> {
        Ok(V::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<V, Error> {
        Ok(V::Str(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<V, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _i: u32,
        _variant: &'static str,
        v: &T,
    ) -> Result<V, Error> {
        // node::Node::RangeVar(RangeVar{..}): the struct names itself
        v.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqB, Error> {
        Ok(SeqB(Vec::with_capacity(len.unwrap_or(0).min(64))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqB, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqB, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        len: usize,
    ) -> Result<SeqB, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<SeqB, Error> {
        self.serialize_seq(len)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<StructB, Error> {
        Ok(StructB(name, Vec::with_capacity(len.min(8))))
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<StructB, Error> {
        self.serialize_struct(variant, len)
    }
}

impl SeqB {
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let x = v.serialize(Builder)?;
        if !x.is_null() {
            self.0.push(x);
        }
        Ok(())
    }
    fn done(self) -> V {
        if self.0.is_empty() {
            V::Null
        } else {
            V::Seq(self.0)
        }
    }
}

impl ser::SerializeSeq for SeqB {
    type Ok = V;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.push(v)
    }
    fn end(self) -> Result<V, Error> {
        Ok(self.done())
    }
}
impl ser::SerializeTuple for SeqB {
    type Ok = V;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.push(v)
    }
    fn end(self) -> Result<V, Error> {
        Ok(self.done())
    }
}
impl ser::SerializeTupleStruct for SeqB {
    type Ok = V;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.push(v)
    }
    fn end(self) -> Result<V, Error> {
        Ok(self.done())
    }
}
impl ser::SerializeTupleVariant for SeqB {
    type Ok = V;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.push(v)
    }
    fn end(self) -> Result<V, Error> {
        Ok(self.done())
    }
}
impl ser::SerializeMap for SeqB {
    type Ok = V;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, _k: &T) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.push(v)
    }
    fn end(self) -> Result<V, Error> {
        Ok(self.done())
    }
}

impl StructB {
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), Error> {
        let x = v.serialize(Builder)?;
        if !x.is_null() {
            self.1.push((key, x));
        }
        Ok(())
    }
}

impl ser::SerializeStruct for StructB {
    type Ok = V;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.field(key, v)
    }
    fn end(self) -> Result<V, Error> {
        Ok(finish_struct(self.0, self.1))
    }
}
impl ser::SerializeStructVariant for StructB {
    type Ok = V;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.field(key, v)
    }
    fn end(self) -> Result<V, Error> {
        Ok(finish_struct(self.0, self.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_named_structs_without_defaults() {
        let p = pg_query::parse("SELECT a FROM s.t", pg_query::ParserOptions::DEFAULT)
            .map_err(|e| e.to_string());
        let Ok(p) = p else {
            panic!("parse failed: {p:?}")
        };
        let Some(stmt) = p.protobuf.stmts.first().and_then(|s| s.stmt.as_ref()) else {
            panic!("no statement")
        };
        let v = build(stmt).map_err(|e| e.to_string());
        let Ok(v) = v else { panic!("{v:?}") };
        assert_eq!(v.struct_name(), Some("SelectStmt"));
        let from = v.get("from_clause");
        let Some(V::Seq(items)) = from else {
            panic!("{v:?}")
        };
        assert_eq!(items[0].struct_name(), Some("RangeVar"));
        assert_eq!(items[0].get("relname").and_then(V::as_str), Some("t"));
        assert_eq!(items[0].get("schemaname").and_then(V::as_str), Some("s"));
        assert!(items[0].get("catalogname").is_none());
    }
}
