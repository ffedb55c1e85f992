//! The untagged first message of a connection: StartupMessage, SSLRequest,
//! GSSENCRequest or CancelRequest.

use super::reader::{Malformed, MessageReader};

pub const PROTOCOL_3_0: i32 = 3 << 16;
pub const SSL_REQUEST: i32 = 80_877_103;
pub const GSSENC_REQUEST: i32 = 80_877_104;
pub const CANCEL_REQUEST: i32 = 80_877_102;

/// PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`.
pub const MAX_STARTUP_LEN: usize = 10_000;

/// One decoded startup-phase packet.
#[derive(Debug, PartialEq, Eq)]
pub enum StartupPacket {
    Ssl,
    GssEnc,
    Cancel { pid: i32, secret: Vec<u8> },
    Startup(Startup),
}

/// A StartupMessage: requested minor version and the parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    pub minor: u16,
    pub params: Vec<Param>,
}

/// A startup parameter: name and value, as sent.
pub type Param = (Vec<u8>, Vec<u8>);

impl Startup {
    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The first parameter name sent twice. PostgreSQL takes the last
    /// value while pgtrail audits the first, so a repeat could make the
    /// record name someone else: such a StartupMessage is refused. Names
    /// are compared ignoring ASCII case, as PostgreSQL compares setting
    /// names (`application_name` and `Application_Name` set one thing).
    pub fn repeated_param(&self) -> Option<&[u8]> {
        let mut seen = std::collections::HashSet::with_capacity(self.params.len());
        self.params
            .iter()
            .map(|(k, _)| k.as_slice())
            .find(|k| !seen.insert(k.to_ascii_lowercase()))
    }

    /// Protocol options (`_pq_.*`), which pgtrail does not support.
    pub fn protocol_options(&self) -> Vec<&[u8]> {
        self.params
            .iter()
            .filter(|(k, _)| k.starts_with(b"_pq_."))
            .map(|(k, _)| k.as_slice())
            .collect()
    }

    /// Parameters to send upstream: everything but protocol options.
    pub fn upstream_params(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.params
            .iter()
            .filter(|(k, _)| !k.starts_with(b"_pq_."))
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }
}

/// The length word of a startup packet, checked: `Ok(total_len)`.
pub fn packet_len(header: [u8; 4]) -> Result<usize, Malformed> {
    let len = i32::from_be_bytes(header);
    match usize::try_from(len) {
        Ok(n) if (8..=MAX_STARTUP_LEN).contains(&n) => Ok(n),
        _ => Err(Malformed("invalid length of startup packet")),
    }
}

/// Decodes a whole startup packet (including its length word).
pub fn decode(packet: &[u8]) -> Result<StartupPacket, Malformed> {
    let mut r = MessageReader::new(
        packet
            .get(4..)
            .ok_or(Malformed("startup packet too short"))?,
    );
    let code = r.i32()?;
    match code {
        SSL_REQUEST => Ok(StartupPacket::Ssl),
        GSSENC_REQUEST => Ok(StartupPacket::GssEnc),
        CANCEL_REQUEST => {
            let pid = r.i32()?;
            let secret = r.remaining().to_vec();
            if secret.len() < 4 || secret.len() > 256 {
                return Err(Malformed("invalid cancel key length"));
            }
            Ok(StartupPacket::Cancel { pid, secret })
        }
        _ if code >> 16 == 3 => Ok(StartupPacket::Startup(Startup {
            minor: (code & 0xffff) as u16,
            params: decode_params(&mut r)?,
        })),
        _ => Err(Malformed("unsupported frontend protocol")),
    }
}

fn decode_params(r: &mut MessageReader<'_>) -> Result<Vec<Param>, Malformed> {
    let mut params = Vec::new();
    loop {
        let name = r.cstr()?;
        if name.is_empty() {
            break;
        }
        let value = r.cstr()?;
        params.push((name.to_vec(), value.to_vec()));
    }
    if !r.is_empty() {
        return Err(Malformed("trailing data after startup parameters"));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(body: &[u8]) -> Vec<u8> {
        let mut p = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn decodes_startup_and_requests() {
        let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
        body.extend_from_slice(b"user\0bob\0database\0db\0\0");
        let StartupPacket::Startup(s) = decode(&packet(&body)).unwrap() else {
            panic!()
        };
        assert_eq!(s.param("user"), Some(&b"bob"[..]));
        assert_eq!(s.minor, 0);
        assert_eq!(s.repeated_param(), None);
        assert_eq!(
            decode(&packet(&SSL_REQUEST.to_be_bytes())),
            Ok(StartupPacket::Ssl)
        );
        let mut cancel = CANCEL_REQUEST.to_be_bytes().to_vec();
        cancel.extend_from_slice(&7i32.to_be_bytes());
        cancel.extend_from_slice(&9i32.to_be_bytes());
        assert_eq!(
            decode(&packet(&cancel)),
            Ok(StartupPacket::Cancel {
                pid: 7,
                secret: 9i32.to_be_bytes().to_vec()
            })
        );
    }

    #[test]
    fn finds_repeated_parameters() {
        let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
        body.extend_from_slice(b"user\0victim\0database\0db\0user\0postgres\0\0");
        let StartupPacket::Startup(s) = decode(&packet(&body)).unwrap() else {
            panic!()
        };
        assert_eq!(s.repeated_param(), Some(&b"user"[..]));
        let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
        body.extend_from_slice(b"user\0u\0application_name\0a\0Application_Name\0b\0\0");
        let StartupPacket::Startup(s) = decode(&packet(&body)).unwrap() else {
            panic!()
        };
        assert_eq!(s.repeated_param(), Some(&b"Application_Name"[..]));
    }

    #[test]
    fn rejects_malformed() {
        assert!(packet_len(0i32.to_be_bytes()).is_err());
        assert!(packet_len(100_000i32.to_be_bytes()).is_err());
        let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
        body.extend_from_slice(b"user\0bob"); // no terminator
        assert!(decode(&packet(&body)).is_err());
        assert!(decode(&packet(&(2i32 << 16).to_be_bytes())).is_err());
    }
}
