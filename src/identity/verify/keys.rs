//! Loading keys: HMAC secrets, PEM SubjectPublicKeyInfo files and JWKS files.

use std::path::Path;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::Value;

use super::{Entry, KeyError, KeySpec, Keys, Material};

/// Shorter HMAC secrets are guessable offline from one signed claim.
const MIN_HMAC_SECRET: usize = 32;

/// Key files are small; a bigger one is a wrong path, not a key.
const MAX_KEY_FILE: u64 = 1024 * 1024;

const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// JWKS writers disagree on padding, so accept it either way there.
const B64URL_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Keys {
    /// Loads and validates every key; the first bad one fails the whole load so
    /// a typo never silently leaves claims unverifiable.
    pub fn load(specs: &[KeySpec]) -> Result<Keys, KeyError> {
        let mut entries = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let position = format!("identity.keys[{i}]");
            let err = |why: String| KeyError {
                key: match &spec.id {
                    Some(id) => format!("{position} ({id})"),
                    None => position.clone(),
                },
                why,
            };
            let single = |material| Entry {
                id: spec.id.clone(),
                label: spec.id.clone().unwrap_or_else(|| position.clone()),
                material,
            };
            let sources = usize::from(spec.hmac_secret.is_some())
                + usize::from(spec.public_key_file.is_some())
                + usize::from(spec.jwks_file.is_some());
            if sources != 1 {
                return Err(err(format!(
                    "set exactly one of hmac_secret, public_key_file, jwks_file (found {sources})"
                )));
            }
            if let Some(secret) = &spec.hmac_secret {
                entries.push(single(hmac_key(secret.as_bytes()).map_err(err)?));
            } else if let Some(path) = &spec.public_key_file {
                let text = read_text(path).map_err(&err)?;
                let material = pem_public_key(&text)
                    .map_err(|why| err(format!("{}: {why}", path.display())))?;
                entries.push(single(material));
            } else if let Some(path) = &spec.jwks_file {
                let text = read_text(path).map_err(&err)?;
                let found = jwks(&text).map_err(|why| err(format!("{}: {why}", path.display())))?;
                for (j, (kid, material)) in found.into_iter().enumerate() {
                    let id = kid.or_else(|| spec.id.clone());
                    let label = id.clone().unwrap_or_else(|| format!("{position}[{j}]"));
                    entries.push(Entry {
                        id,
                        label,
                        material,
                    });
                }
            }
        }
        Ok(Keys { entries })
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(format!("{shown} is larger than 1 MiB; not a key file"));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))
}

fn hmac_key(secret: &[u8]) -> Result<Material, String> {
    if secret.len() < MIN_HMAC_SECRET {
        return Err(format!(
            "hmac secret is {} bytes; at least {MIN_HMAC_SECRET} are required",
            secret.len()
        ));
    }
    Ok(Material::Hmac(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        secret,
    )))
}

/// The first `PUBLIC KEY` block; other PEM kinds get a hint at the usual mistake.
fn pem_public_key(text: &str) -> Result<Material, String> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let Some(start) = text.find(BEGIN) else {
        if text.contains("PRIVATE KEY-----") {
            return Err("holds a private key; give the public key (openssl pkey -pubout)".into());
        }
        if text.contains("-----BEGIN RSA PUBLIC KEY-----") {
            return Err("is PKCS#1; convert it with openssl pkey -pubin -in FILE -pubout".into());
        }
        return Err("no PEM \"PUBLIC KEY\" block found".into());
    };
    let body = &text[start + BEGIN.len()..];
    let end = body.find(END).ok_or("PEM block has no END line")?;
    let b64: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|_| "PEM body is not valid base64")?;
    spki(&der)
}

/// SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { OID, params }, BIT STRING }.
fn spki(der: &[u8]) -> Result<Material, String> {
    let bad = || "not a valid SubjectPublicKeyInfo".to_string();
    let (info, rest) = der_take(der, 0x30).ok_or_else(bad)?;
    if !rest.is_empty() {
        return Err(bad());
    }
    let (alg, info) = der_take(info, 0x30).ok_or_else(bad)?;
    let (bits, tail) = der_take(info, 0x03).ok_or_else(bad)?;
    let (oid, params) = der_take(alg, 0x06).ok_or_else(bad)?;
    // The first BIT STRING byte counts unused bits; keys are whole bytes.
    let key = match bits.split_first() {
        Some((0, key)) if tail.is_empty() => key,
        _ => return Err(bad()),
    };
    if oid == OID_ED25519 {
        if !params.is_empty() || key.len() != 32 {
            return Err("Ed25519 key is not 32 bytes".into());
        }
        return Ok(Material::Ed25519(key.to_vec()));
    }
    if oid == OID_RSA {
        let (seq, rest) = der_take(key, 0x30).ok_or("RSA key is not a valid RSAPublicKey")?;
        let (n, seq) = der_take(seq, 0x02).ok_or("RSA key has no modulus")?;
        let (e, seq) = der_take(seq, 0x02).ok_or("RSA key has no exponent")?;
        if !rest.is_empty() || !seq.is_empty() {
            return Err("RSA key is not a valid RSAPublicKey".into());
        }
        return rsa_key(n, e);
    }
    Err("key algorithm is neither Ed25519 nor RSA".into())
}

/// One DER element with the expected tag: its contents and what follows it.
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form; 0x80 (indefinite) is not DER, and >4 bytes is never a key.
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (digits, after) = rest.split_at(count);
        rest = after;
        digits
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// ring checks the key only when verifying; checking here reports a bad key at
/// startup instead of as a stream of signature failures.
fn rsa_key(n: &[u8], e: &[u8]) -> Result<Material, String> {
    let strip = |v: &[u8]| -> Vec<u8> {
        let zeros = v.iter().take_while(|&&b| b == 0).count();
        v[zeros..].to_vec()
    };
    let (n, e) = (strip(n), strip(e));
    let bits = match n.first() {
        Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    };
    if !(2048..=8192).contains(&bits) {
        return Err(format!(
            "RSA modulus is {bits} bits; 2048 to 8192 are accepted"
        ));
    }
    // ring accepts public exponents from 3 up to 33 bits, odd.
    let e_value = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if e.len() > 5 || e_value < 3 || e_value >> 33 != 0 || e_value % 2 == 0 {
        return Err("RSA public exponent is not acceptable".into());
    }
    Ok(Material::Rsa { n, e })
}

/// The usable signing keys of a JWKS, each with its `kid`.
fn jwks(text: &str) -> Result<Vec<(Option<String>, Material)>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWKS: no \"keys\" array")?;
    let mut found = Vec::new();
    for (j, jwk) in list.iter().enumerate() {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        let kid = field("kid").map(str::to_string);
        let at = match &kid {
            Some(kid) => format!("key {j} ({kid})"),
            None => format!("key {j}"),
        };
        if field("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let bytes = |name: &str| -> Result<Vec<u8>, String> {
            let text = field(name).ok_or_else(|| format!("{at}: no \"{name}\""))?;
            B64URL_ANY_PAD
                .decode(text)
                .map_err(|_| format!("{at}: \"{name}\" is not base64url"))
        };
        let (material, alg) = match (field("kty"), field("crv")) {
            (Some("OKP"), Some("Ed25519")) => {
                let x = bytes("x")?;
                if x.len() != 32 {
                    return Err(format!("{at}: Ed25519 \"x\" is not 32 bytes"));
                }
                (Material::Ed25519(x), "EdDSA")
            }
            (Some("RSA"), _) => {
                let m = rsa_key(&bytes("n")?, &bytes("e")?).map_err(|e| format!("{at}: {e}"))?;
                (m, "RS256")
            }
            (Some("oct"), _) => (
                hmac_key(&bytes("k")?).map_err(|e| format!("{at}: {e}"))?,
                "HS256",
            ),
            // Other curves and key types are not ours to use; skipping them lets
            // an identity provider's full JWKS be used as is.
            _ => continue,
        };
        // A key published for another algorithm (say RS512) must not be used for ours.
        if field("alg").is_some_and(|a| a != alg) {
            continue;
        }
        found.push((kid, material));
    }
    if found.is_empty() {
        return Err(format!(
            "no usable signing key among {} (supported: OKP Ed25519, RSA, oct)",
            list.len()
        ));
    }
    Ok(found)
}
