//! Reading nodes of the generic tree ([`V`]): a field by name, a string
//! field, a location, the dotted name of a `RangeVar` or of any name-ish
//! node.

use super::tree::V;

pub(crate) type Fields = [(&'static str, V)];

pub(crate) fn get<'a>(f: &'a Fields, key: &str) -> Option<&'a V> {
    f.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

pub(crate) fn s<'a>(f: &'a Fields, key: &str) -> &'a str {
    get(f, key).and_then(V::as_str).unwrap_or("")
}

pub(crate) fn loc(f: &Fields) -> i64 {
    match get(f, "location") {
        Some(V::Int(i)) => *i,
        _ => 0,
    }
}

/// `catalog.schema.rel` of a RangeVar.
pub(crate) fn rv_name(f: &Fields) -> String {
    let mut out = String::new();
    for k in ["catalogname", "schemaname", "relname"] {
        let p = s(f, k);
        if !p.is_empty() {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(p);
        }
    }
    out
}

/// Name of a name-ish node: String, List of Strings, RangeVar,
/// ObjectWithArgs, TypeName, RoleSpec, AccessPriv, or a plain string.
pub(crate) fn name_of(v: &V) -> Option<String> {
    match v {
        V::Str(x) => Some(x.clone()),
        V::Seq(_) => join_list(v),
        V::Struct(n, f) => match *n {
            "String" => get(f, "sval").and_then(V::as_str).map(str::to_string),
            "List" => get(f, "items").and_then(join_list),
            "RangeVar" => Some(rv_name(f)).filter(|x| !x.is_empty()),
            "ObjectWithArgs" => get(f, "objname").and_then(join_list),
            "TypeName" => get(f, "names").and_then(join_list),
            "RoleSpec" => get(f, "rolename").and_then(V::as_str).map(str::to_string),
            "AccessPriv" => get(f, "priv_name").and_then(V::as_str).map(str::to_string),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn join_list(v: &V) -> Option<String> {
    let V::Seq(items) = v else { return name_of(v) };
    let mut out = String::new();
    for it in items {
        let p = name_of(it)?;
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&p);
    }
    Some(out).filter(|x| !x.is_empty())
}
