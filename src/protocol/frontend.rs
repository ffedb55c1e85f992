//! Read-only views of the client messages the audit needs. Each takes the
//! message body (the frame without its 5-byte header).

use super::reader::{Malformed, MessageReader};

/// Query ('Q'): the query string.
pub fn query(body: &[u8]) -> Result<&[u8], Malformed> {
    MessageReader::new(body).cstr()
}

/// Parse ('P').
#[derive(Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    pub statement: &'a [u8],
    pub query: &'a [u8],
}

pub fn parse(body: &[u8]) -> Result<Parse<'_>, Malformed> {
    let mut r = MessageReader::new(body);
    Ok(Parse {
        statement: r.cstr()?,
        query: r.cstr()?,
    })
}

/// Bind ('B'): names, with the parameter values decoded only when asked for.
#[derive(Debug)]
pub struct Bind<'a> {
    pub portal: &'a [u8],
    pub statement: &'a [u8],
    rest: MessageReader<'a>,
}

/// A bound parameter value: `None` is SQL NULL. `binary` tells how to read it.
#[derive(Debug, PartialEq, Eq)]
pub struct Param<'a> {
    pub value: Option<&'a [u8]>,
    pub binary: bool,
}

pub fn bind(body: &[u8]) -> Result<Bind<'_>, Malformed> {
    let mut r = MessageReader::new(body);
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    Ok(Bind {
        portal,
        statement,
        rest: r,
    })
}

impl<'a> Bind<'a> {
    /// The parameter values with their formats.
    pub fn params(&self) -> Result<Vec<Param<'a>>, Malformed> {
        let mut r = self.rest.clone();
        let nformats = r.count16()?;
        let formats = r.bytes(nformats * 2)?;
        let nparams = r.count16()?;
        let mut params = Vec::with_capacity(nparams);
        for i in 0..nparams {
            let len = r.i32()?;
            let value = match usize::try_from(len) {
                Ok(n) => Some(r.bytes(n)?),
                Err(_) if len == -1 => None,
                Err(_) => return Err(Malformed("negative parameter length")),
            };
            let format = match nformats {
                0 => 0,
                1 => i16::from_be_bytes([formats[0], formats[1]]),
                _ if i < nformats => i16::from_be_bytes([formats[2 * i], formats[2 * i + 1]]),
                _ => return Err(Malformed("fewer formats than parameters")),
            };
            params.push(Param {
                value,
                binary: format == 1,
            });
        }
        Ok(params)
    }
}

/// Execute ('E').
#[derive(Debug, PartialEq, Eq)]
pub struct Execute<'a> {
    pub portal: &'a [u8],
    pub max_rows: i32,
}

pub fn execute(body: &[u8]) -> Result<Execute<'_>, Malformed> {
    let mut r = MessageReader::new(body);
    Ok(Execute {
        portal: r.cstr()?,
        max_rows: r.i32()?,
    })
}

/// Close ('C') and Describe ('D') name either a statement or a portal.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Target {
    Statement,
    Portal,
}

pub fn close_or_describe(body: &[u8]) -> Result<(Target, &[u8]), Malformed> {
    let mut r = MessageReader::new(body);
    let target = match r.u8()? {
        b'S' => Target::Statement,
        b'P' => Target::Portal,
        _ => return Err(Malformed("Close/Describe target is neither 'S' nor 'P'")),
    };
    Ok((target, r.cstr()?))
}

/// FunctionCall ('F'): the function's OID.
pub fn function_call_oid(body: &[u8]) -> Result<u32, Malformed> {
    let oid = MessageReader::new(body).i32()?;
    Ok(oid as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_params_with_formats() {
        let mut body = b"p1\0s1\0".to_vec();
        body.extend_from_slice(&1i16.to_be_bytes()); // one format for all
        body.extend_from_slice(&1i16.to_be_bytes()); // binary
        body.extend_from_slice(&2i16.to_be_bytes()); // two params
        body.extend_from_slice(&3i32.to_be_bytes());
        body.extend_from_slice(b"abc");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        let b = bind(&body).unwrap();
        assert_eq!(b.portal, b"p1");
        assert_eq!(b.statement, b"s1");
        let p = b.params().unwrap();
        assert_eq!(
            p,
            vec![
                Param {
                    value: Some(b"abc"),
                    binary: true
                },
                Param {
                    value: None,
                    binary: true
                }
            ]
        );
    }

    #[test]
    fn truncated_bind_is_malformed() {
        let mut body = b"\0\0".to_vec();
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&10i32.to_be_bytes());
        body.extend_from_slice(b"short");
        assert!(bind(&body).unwrap().params().is_err());
    }

    #[test]
    fn execute_and_close() {
        let mut body = b"portal\0".to_vec();
        body.extend_from_slice(&5i32.to_be_bytes());
        assert_eq!(
            execute(&body).unwrap(),
            Execute {
                portal: b"portal",
                max_rows: 5
            }
        );
        assert_eq!(
            close_or_describe(b"Sname\0").unwrap(),
            (Target::Statement, &b"name"[..])
        );
        assert!(close_or_describe(b"Xname\0").is_err());
    }
}
