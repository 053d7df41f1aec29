//! Values that must be unguessable, drawn from OpenSSL's CSPRNG.

use openssl::rand::rand_bytes;

fn random<const N: usize>() -> Result<[u8; N], openssl::error::ErrorStack> {
    let mut b = [0u8; N];
    rand_bytes(&mut b)?;
    Ok(b)
}

/// 160 random bits as 32 characters of lower-case base32 (`[a-z2-7]`), the Easy DKIM token form.
pub fn dkim_token() -> Result<String, openssl::error::ErrorStack> {
    Ok(data_encoding::BASE32_NOPAD
        .encode(&random::<20>()?)
        .to_ascii_lowercase())
}

/// An access key id in AWS's form: `AKIA` and 16 characters of upper-case base32.
pub fn access_key_id() -> Result<String, openssl::error::ErrorStack> {
    let tail = data_encoding::BASE32_NOPAD.encode(&random::<10>()?);
    Ok(format!("AKIA{tail}"))
}

/// A 40-character secret access key (240 random bits, base64 without padding like AWS's).
pub fn secret_access_key() -> Result<String, openssl::error::ErrorStack> {
    Ok(data_encoding::BASE64.encode(&random::<30>()?))
}

/// 256 random bits as 43 characters of unpadded base64url: a verification link's token.
pub fn link_token() -> Result<String, openssl::error::ErrorStack> {
    Ok(data_encoding::BASE64URL_NOPAD.encode(&random::<32>()?))
}

/// A random UUID (version 4, RFC 9562 section 5.4) in its hyphenated lower-case form, the
/// shape of SES's message ids.
pub fn uuid_v4() -> Result<String, openssl::error::ErrorStack> {
    let mut b = random::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = data_encoding::HEXLOWER.encode(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// 256 random bits as 52 characters of lower-case base32: the web console's admin token and
/// its session ids.
pub fn admin_token() -> Result<String, openssl::error::ErrorStack> {
    Ok(data_encoding::BASE32_NOPAD
        .encode(&random::<32>()?)
        .to_ascii_lowercase())
}

/// A twelve-digit account id (the first digit is never zero, so it never looks truncated).
pub fn account_id() -> Result<String, openssl::error::ErrorStack> {
    let b = random::<12>()?;
    Ok(b.iter()
        .enumerate()
        .map(|(i, x)| {
            let d = if i == 0 { 1 + x % 9 } else { x % 10 };
            char::from(b'0' + d)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = dkim_token().unwrap();
        assert_eq!(t.len(), 32);
        assert!(sesame_core::model::DkimToken::parse(&t).is_ok());
        assert_ne!(t, dkim_token().unwrap());
        let k = access_key_id().unwrap();
        assert!(k.starts_with("AKIA") && k.len() == 20);
        assert_eq!(secret_access_key().unwrap().len(), 40);
        let a = account_id().unwrap();
        assert!(sesame_core::model::AccountId::parse(&a).is_ok());
        let u = uuid_v4().unwrap();
        let groups: Vec<usize> = u.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{u}");
        assert_eq!(&u[14..15], "4", "version 4: {u}");
        assert!("89ab".contains(&u[19..20]), "RFC variant: {u}");
        assert!(
            u.bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(u, uuid_v4().unwrap());
    }
}
