//! The static SQL of a PL/pgSQL body, read with libpg_query's PL/pgSQL
//! parser (`pg_query::parse_plpgsql`), for DO blocks and functions.

use serde_json::Value;

/// What a PL/pgSQL body runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlpgsqlBody {
    /// Each SQL statement and expression, as SQL PostgreSQL would run
    /// (`SELECT <expr>` for an expression).
    pub statements: Vec<String>,
    /// Names of its variables and parameters: unqualified, they are not
    /// columns.
    pub variables: Vec<String>,
    /// How many statements run SQL built at run time (`EXECUTE`,
    /// `FOR ... IN EXECUTE`, `OPEN ... FOR EXECUTE`, `RETURN QUERY
    /// EXECUTE`): what those read cannot be known from the text.
    pub dynamic: usize,
}

/// PLpgSQL_expr parse modes (PostgreSQL's `RawParseMode`).
const MODE_DEFAULT: i64 = 0;
const MODE_EXPR: i64 = 2;
const MODE_ASSIGN: [i64; 3] = [3, 4, 5];

/// A function's arguments and result as PostgreSQL prints them
/// (`pg_get_function_arguments`, `pg_get_function_result`): the PL/pgSQL
/// parser checks RETURN against the result and declares the arguments.
#[derive(Debug, Clone, Copy)]
pub struct Signature<'a> {
    pub arguments: &'a str,
    pub result: &'a str,
}

/// A DO block's: no arguments, nothing returned.
pub const DO_BLOCK: Signature<'static> = Signature {
    arguments: "",
    result: "void",
};

/// Parses `body`, the text between a DO block's or a function's quotes.
pub fn plpgsql_statements(body: &str, signature: Signature<'_>) -> Result<PlpgsqlBody, String> {
    let tag = dollar_tag(body);
    let Signature { arguments, result } = signature;
    let wrapped = format!(
        "CREATE FUNCTION pgtrail_body({arguments}) RETURNS {result} LANGUAGE plpgsql AS {tag}{body}{tag}"
    );
    let parsed = std::panic::catch_unwind(|| pg_query::parse_plpgsql(&wrapped))
        .map_err(|_| "the PL/pgSQL parser panicked".to_string())?
        .map_err(|e| e.to_string())?;
    let mut out = PlpgsqlBody::default();
    collect(&parsed, &mut out, 0);
    Ok(out)
}

/// A dollar-quote tag that does not occur in `body`.
fn dollar_tag(body: &str) -> String {
    let mut n = 0u32;
    loop {
        let tag = format!("$pgtrail{n}$");
        if !body.contains(&tag) {
            return tag;
        }
        n += 1;
    }
}

fn collect(v: &Value, out: &mut PlpgsqlBody, depth: usize) {
    if depth > 200 {
        return;
    }
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect(x, out, depth + 1)),
        Value::Object(m) => {
            for (key, x) in m {
                match key.as_str() {
                    "PLpgSQL_expr" => expression(x, out),
                    "PLpgSQL_stmt_dynexecute" | "PLpgSQL_stmt_dynfors" | "dynquery" => {
                        out.dynamic += 1;
                        collect(x, out, depth + 1);
                    }
                    "PLpgSQL_var" | "PLpgSQL_rec" => {
                        if let Some(name) = x.get("refname").and_then(Value::as_str) {
                            if !out.variables.iter().any(|v| v == name) {
                                out.variables.push(name.to_string());
                            }
                        }
                    }
                    _ => collect(x, out, depth + 1),
                }
            }
        }
        _ => {}
    }
}

fn expression(x: &Value, out: &mut PlpgsqlBody) {
    let Some(query) = x.get("query").and_then(Value::as_str) else {
        return;
    };
    let mode = x.get("parseMode").and_then(Value::as_i64).unwrap_or(0);
    let sql = match mode {
        MODE_DEFAULT => query.to_string(),
        MODE_EXPR => format!("SELECT {query}"),
        m if MODE_ASSIGN.contains(&m) => {
            // `target := expr` (or `target = expr`)
            let value = query
                .split_once(":=")
                .or_else(|| query.split_once('='))
                .map_or(query, |(_, value)| value);
            format!("SELECT {value}")
        }
        _ => return,
    };
    if !out.statements.contains(&sql) {
        out.statements.push(sql);
    }
}
