//! `OpenSslVault`: the `KeyVault` over OpenSSL. Generates RSA-1024 and RSA-2048 DKIM keys,
//! validates and imports customers' keys, seals every private key before it leaves, and signs
//! mail with sealed keys, which it unseals once and keeps (the only plaintext keys in memory).

use crate::random;
use crate::seal::Sealer;
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::error::ErrorStack;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use sesame_core::Error;
use sesame_core::error::{Invalid, KeyProblem};
use sesame_core::model::{DkimToken, KeyLength, LinkHash, LinkToken, NewLink, Timestamp};
use sesame_core::ports::{KeyVault, NewKey, PrivateKeyInput};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The associated-data label of sealed DKIM private keys.
pub const DKIM_KEY_PURPOSE: &str = "sesame/dkim-private-key/v1";

/// Beyond this many unsealed keys the cache starts over: it only bounds memory if many keys
/// come and go; a node signs for far fewer domains.
const MAX_UNSEALED: usize = 4096;

/// The vault; it holds the master key through its `Sealer`.
pub struct OpenSslVault {
    sealer: Sealer,
    /// Signing keys already unsealed, by their sealed bytes: parsing an RSA private key costs
    /// far more than the signature itself. The same sealed bytes always open to the same key
    /// (AES-GCM under one master key), so an entry cannot go stale.
    unsealed: Mutex<HashMap<Vec<u8>, Arc<PKey<Private>>>>,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("crypto backend: {e}"))
}

impl OpenSslVault {
    /// A vault sealing under `sealer`'s master key.
    pub fn new(sealer: Sealer) -> OpenSslVault {
        OpenSslVault {
            sealer,
            unsealed: Mutex::new(HashMap::new()),
        }
    }

    /// Unseals a DKIM private key.
    fn open(&self, sealed: &[u8]) -> Result<PKey<Private>, Error> {
        let der = self
            .sealer
            .open(DKIM_KEY_PURPOSE, sealed)
            .map_err(internal)?;
        PKey::private_key_from_pkcs8(&der).map_err(internal)
    }

    /// The unsealed signing key of `sealed`, from the cache or unsealed now and kept.
    fn signing_key(&self, sealed: &[u8]) -> Result<Arc<PKey<Private>>, Error> {
        let lock = || self.unsealed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = lock().get(sealed).cloned() {
            return Ok(k);
        }
        // Unsealed outside the lock: other signatures need not wait for this parse.
        let key = Arc::new(self.open(sealed)?);
        let mut m = lock();
        if m.len() >= MAX_UNSEALED {
            m.clear();
        }
        m.insert(sealed.to_vec(), key.clone());
        Ok(key)
    }

    /// The DER SubjectPublicKeyInfo of a sealed private key: lets a checker see that a sealed
    /// key opens, and to the public key stored next to it, without holding the private key.
    pub fn public_key_of(&self, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        self.open(sealed)?.public_key_to_der().map_err(internal)
    }

    fn seal(&self, key: &PKey<Private>) -> Result<NewKey, Error> {
        let rsa = key.rsa().map_err(internal)?;
        // PKCS#8 is the one at-rest form, whichever form the customer uploaded.
        let der = key.private_key_to_pkcs8().map_err(internal)?;
        Ok(NewKey {
            bits: rsa.size() * 8,
            public_der: key.public_key_to_der().map_err(internal)?,
            sealed_private: self.sealer.seal(DKIM_KEY_PURPOSE, &der).map_err(internal)?,
        })
    }
}

/// A BYODKIM key refused for `problem`.
fn refused(problem: KeyProblem) -> Error {
    Error::Invalid(Invalid::PrivateKey(problem))
}

impl KeyVault for OpenSslVault {
    fn generate(&self, length: KeyLength) -> Result<NewKey, Error> {
        let rsa = Rsa::generate(length.bits()).map_err(internal)?;
        let key = PKey::from_rsa(rsa).map_err(internal)?;
        self.seal(&key)
    }

    fn import(&self, input: &PrivateKeyInput) -> Result<NewKey, Error> {
        let key = parse_private_key(&input.0).map_err(|_| refused(KeyProblem::NotDer))?;
        if key.id() != Id::RSA {
            return Err(refused(KeyProblem::NotRsa));
        }
        let rsa = key.rsa().map_err(internal)?;
        let bits = rsa.size() * 8;
        if !(1024..=2048).contains(&bits) {
            return Err(refused(KeyProblem::Bits(bits)));
        }
        check_consistent(&rsa)?;
        self.seal(&key)
    }

    fn new_token(&self) -> Result<DkimToken, Error> {
        Ok(DkimToken::parse(&random::dkim_token().map_err(internal)?)?)
    }

    fn new_message_id(&self) -> Result<String, Error> {
        random::uuid_v4().map_err(internal)
    }

    fn new_link(&self) -> Result<NewLink, Error> {
        let token = LinkToken::parse(&random::link_token().map_err(internal)?)?;
        Ok(NewLink {
            hash: self.link_hash(&token),
            token,
        })
    }

    fn link_hash(&self, token: &LinkToken) -> LinkHash {
        let digest = openssl::sha::sha256(token.expose().as_bytes());
        LinkHash::parse(&data_encoding::HEXLOWER.encode(&digest))
            .unwrap_or_else(|_| unreachable!("a SHA-256 is 64 hex digits"))
    }

    fn sign(
        &self,
        sealed_private: &[u8],
        message: &[u8],
        domain: &str,
        selector: &str,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error> {
        let key = self.signing_key(sealed_private)?;
        // DKIM's t= is in whole seconds (RFC 6376 section 3.5).
        let unix_time = u64::try_from(now.0 / 1000).unwrap_or(0);
        crate::dkim::sign(message, &key, domain, selector, unix_time)
    }
}

/// Parses a customer's DER private key: PKCS#1 `RSAPrivateKey`, PKCS#8 `PrivateKeyInfo`, or
/// whatever else OpenSSL recognises (so a non-RSA key is reported as such).
///
/// RSA keys take a fast path: `d2i_RSAPrivateKey` costs about 4 µs, while OpenSSL 3's generic
/// decoders (`d2i_AutoPrivateKey`, and PKCS#8 through `EVP_PKCS82PKEY`) cost about 1 ms per
/// call, more than everything else an import does. The fast path only accepts what the
/// generic one accepts: a PKCS#8 wrapper is unwrapped here only when it is exactly version 0,
/// `rsaEncryption` with NULL parameters and the key, nothing after it.
fn parse_private_key(der: &[u8]) -> Result<PKey<Private>, ErrorStack> {
    let rsa = Rsa::private_key_from_der(der)
        .or_else(|e| pkcs8_rsa_key(der).map_or(Err(e), Rsa::private_key_from_der));
    match rsa {
        Ok(rsa) => PKey::from_rsa(rsa),
        // d2i_AutoPrivateKey accepts PKCS#1 and PKCS#8 DER of any key type.
        Err(_) => PKey::private_key_from_der(der),
    }
}

/// The `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` of an `rsaEncryption` key without
/// attributes; `None` for anything else (which the generic decoder then judges).
fn pkcs8_rsa_key(der: &[u8]) -> Option<&[u8]> {
    /// `AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }`, its contents.
    const RSA_ENCRYPTION: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let (info, rest) = der_element(der, 0x30)?;
    let (version, info) = der_element(info, 0x02)?;
    let (algorithm, info) = der_element(info, 0x30)?;
    let (key, info) = der_element(info, 0x04)?;
    (rest.is_empty() && info.is_empty() && version == [0] && algorithm == RSA_ENCRYPTION)
        .then_some(key)
}

/// One DER element with tag `tag` at the start of `der`: its contents and what follows it.
fn der_element(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if t != tag {
        return None;
    }
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: 1 to 3 length bytes are plenty for a key of at most 2048 bits.
        let (bytes, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
        if bytes.is_empty() || bytes.len() > 3 {
            return None;
        }
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    rest.split_at_checked(len)
}

/// Checks that an RSA private key's components agree with each other, in microseconds.
///
/// Not `RSA_check_key`: in OpenSSL 3 it runs probabilistic primality tests on p and q, which
/// cost about 8 ms (1024 bits) and 58 ms (2048 bits) per call and capped BYODKIM imports far
/// below what the store commits. Whether the customer's primes are prime is the customer's
/// concern (a composite factor makes a weak key, as any badly generated key is weak); what
/// Sesame must catch is a key whose parts disagree, since it would publish a public key that
/// signatures made with the private parts do not verify under. For prime p and q these are the
/// relations that make CRT and plain signatures verify under (n, e), the same ones
/// `RSA_check_key` checks after its primality tests: n = p·q, e odd and > 1,
/// e·d ≡ 1 (mod p−1) and (mod q−1), dP = d mod (p−1), dQ = d mod (q−1),
/// qInv = q⁻¹ mod p. A few multiplications and reductions.
fn check_consistent(rsa: &Rsa<Private>) -> Result<(), Error> {
    let (Some(p), Some(q), Some(dmp1), Some(dmq1), Some(iqmp)) =
        (rsa.p(), rsa.q(), rsa.dmp1(), rsa.dmq1(), rsa.iqmp())
    else {
        return Err(refused(KeyProblem::MissingFactors));
    };
    let one = BigNum::from_u32(1).map_err(internal)?;
    if p.ucmp(&one) != Ordering::Greater || q.ucmp(&one) != Ordering::Greater {
        // Encoders write zeros for factors they do not have.
        return Err(refused(KeyProblem::MissingFactors));
    }
    let parts = Parts {
        n: rsa.n(),
        e: rsa.e(),
        d: rsa.d(),
        p,
        q,
        dmp1,
        dmq1,
        iqmp,
    };
    if parts.consistent(&one).map_err(internal)? {
        Ok(())
    } else if multi_prime(rsa) {
        // Consistent, but n has a third factor: say so rather than call the key broken.
        Err(refused(KeyProblem::MultiPrime))
    } else {
        Err(refused(KeyProblem::Inconsistent))
    }
}

/// Whether OpenSSL holds `rsa` as a multi-prime key: its PKCS#1 encoding is then version 1
/// (RFC 8017 appendix A.1.2), the INTEGER right after the outer SEQUENCE's header.
fn multi_prime(rsa: &Rsa<Private>) -> bool {
    let Ok(der) = rsa.private_key_to_der() else {
        return false;
    };
    let header = match der.get(1) {
        Some(&l) if l < 0x80 => 2,
        Some(&l) => 2 + usize::from(l & 0x7f),
        None => return false,
    };
    der.get(header..header + 3) == Some(&[0x02, 0x01, 0x01])
}

/// The components of an RSA private key, as `check_consistent` compares them.
struct Parts<'a> {
    n: &'a BigNumRef,
    e: &'a BigNumRef,
    d: &'a BigNumRef,
    p: &'a BigNumRef,
    q: &'a BigNumRef,
    dmp1: &'a BigNumRef,
    dmq1: &'a BigNumRef,
    iqmp: &'a BigNumRef,
}

impl Parts<'_> {
    /// Whether every relation holds; `Err` only if OpenSSL fails (allocation).
    fn consistent(&self, one: &BigNumRef) -> Result<bool, ErrorStack> {
        let all = [
            self.n, self.e, self.d, self.p, self.q, self.dmp1, self.dmq1, self.iqmp,
        ];
        if all.iter().any(|v| v.is_negative()) {
            return Ok(false);
        }
        if !self.e.is_bit_set(0) || self.e.ucmp(one) != Ordering::Greater {
            return Ok(false);
        }
        let mut ctx = BigNumContext::new()?;
        let mut t = BigNum::new()?;
        t.checked_mul(self.p, self.q, &mut ctx)?;
        if t.ucmp(self.n) != Ordering::Equal {
            return Ok(false);
        }
        let mut m = BigNum::new()?;
        for (prime, crt_exponent) in [(self.p, self.dmp1), (self.q, self.dmq1)] {
            m.checked_sub(prime, one)?;
            t.nnmod(self.d, &m, &mut ctx)?;
            if t.ucmp(crt_exponent) != Ordering::Equal {
                return Ok(false);
            }
            t.mod_mul(self.e, self.d, &m, &mut ctx)?;
            if t.ucmp(one) != Ordering::Equal {
                return Ok(false);
            }
        }
        if self.iqmp.ucmp(self.p) != Ordering::Less {
            return Ok(false);
        }
        t.mod_mul(self.iqmp, self.q, self.p, &mut ctx)?;
        Ok(t.ucmp(one) == Ordering::Equal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::MasterKey;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;

    fn vault() -> OpenSslVault {
        OpenSslVault::new(Sealer::new(MasterKey::generate().unwrap()))
    }

    fn reason(e: Error) -> KeyProblem {
        match e {
            Error::Invalid(Invalid::PrivateKey(p)) => p,
            other => panic!("expected a refused private key, got {other:?}"),
        }
    }

    /// RSA-1024 is the reason for the OpenSSL backend: generate, seal, open and sign with it.
    #[test]
    fn rsa_1024_and_2048_generate_seal_open_and_sign() {
        let v = vault();
        for (len, bits) in [(KeyLength::Rsa1024, 1024), (KeyLength::Rsa2048, 2048)] {
            let k = v.generate(len).unwrap();
            assert_eq!(k.bits, bits);
            let public = PKey::public_key_from_der(&k.public_der).unwrap();
            assert_eq!(public.bits(), bits);
            let private = v.open(&k.sealed_private).unwrap();
            let mut signer =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &private)
                    .unwrap();
            signer.update(b"message").unwrap();
            let sig = signer.sign_to_vec().unwrap();
            let mut verifier =
                openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public)
                    .unwrap();
            verifier.update(b"message").unwrap();
            assert!(verifier.verify(&sig).unwrap());
        }
    }

    #[test]
    fn import_accepts_pkcs1_and_pkcs8_of_1024_and_2048_bits() {
        let v = vault();
        for bits in [1024, 2048] {
            let rsa = Rsa::generate(bits).unwrap();
            let spki = PKey::from_rsa(rsa.clone())
                .unwrap()
                .public_key_to_der()
                .unwrap();
            let pkcs1 = rsa.private_key_to_der().unwrap();
            let pkcs8 = PKey::from_rsa(rsa).unwrap().private_key_to_pkcs8().unwrap();
            for der in [pkcs1, pkcs8] {
                let k = v.import(&PrivateKeyInput(der)).unwrap();
                assert_eq!(k.bits, bits);
                assert_eq!(k.public_der, spki);
            }
        }
    }

    #[test]
    fn import_rejects_what_ses_rejects_and_says_why() {
        let v = vault();
        let garbage = reason(
            v.import(&PrivateKeyInput(b"not a key".to_vec()))
                .err()
                .unwrap(),
        );
        assert_eq!(garbage, KeyProblem::NotDer);
        let small = Rsa::generate(512).unwrap().private_key_to_der().unwrap();
        let small = reason(v.import(&PrivateKeyInput(small)).err().unwrap());
        assert_eq!(small, KeyProblem::Bits(512));
        let big = Rsa::generate(3072).unwrap().private_key_to_der().unwrap();
        assert_eq!(
            reason(v.import(&PrivateKeyInput(big)).err().unwrap()),
            KeyProblem::Bits(3072)
        );
        let ec =
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        let ec = PKey::from_ec_key(ec)
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap();
        assert_eq!(
            reason(v.import(&PrivateKeyInput(ec)).err().unwrap()),
            KeyProblem::NotRsa
        );
    }

    /// The fast paths read PKCS#1 and plain PKCS#8 RSA keys exactly as OpenSSL's generic
    /// decoder does, and anything else (a PKCS#8 key with attributes, truncated DER, another
    /// key type) is left to the generic decoder.
    #[test]
    fn the_fast_parse_agrees_with_the_generic_decoder() {
        let rsa = Rsa::generate(1024).unwrap();
        let key = PKey::from_rsa(rsa.clone()).unwrap();
        let pkcs8 = key.private_key_to_pkcs8().unwrap();
        let inner = pkcs8_rsa_key(&pkcs8).expect("OpenSSL's PKCS#8 takes the fast path");
        assert_eq!(inner, rsa.private_key_to_der().unwrap());
        for der in [rsa.private_key_to_der().unwrap(), pkcs8.clone()] {
            let fast = parse_private_key(&der).unwrap();
            let generic = PKey::private_key_from_der(&der).unwrap();
            assert!(fast.public_eq(&generic));
            assert_eq!(
                fast.private_key_to_pkcs8().unwrap(),
                generic.private_key_to_pkcs8().unwrap()
            );
        }
        for cut in [1, 2, 10, pkcs8.len() / 2, pkcs8.len() - 1] {
            assert!(pkcs8_rsa_key(&pkcs8[..cut]).is_none(), "{cut}");
            assert!(parse_private_key(&pkcs8[..cut]).is_err(), "{cut}");
        }
        let mut trailing = pkcs8.clone();
        trailing.push(0);
        assert!(pkcs8_rsa_key(&trailing).is_none());
        let ec =
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        let ec = PKey::from_ec_key(ec)
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap();
        assert!(pkcs8_rsa_key(&ec).is_none());
        assert_eq!(parse_private_key(&ec).unwrap().id(), Id::EC);
    }

    /// The components of `rsa` (n, e, d, p, q, dP, dQ, qInv), changed by `change`, as
    /// PKCS#1 DER: OpenSSL sets and encodes them without checking.
    fn tampered(rsa: &Rsa<Private>, change: impl FnOnce(&mut [BigNum; 8])) -> Vec<u8> {
        let c = |v: Option<&BigNumRef>| v.unwrap().to_owned().unwrap();
        let mut parts = [
            c(Some(rsa.n())),
            c(Some(rsa.e())),
            c(Some(rsa.d())),
            c(rsa.p()),
            c(rsa.q()),
            c(rsa.dmp1()),
            c(rsa.dmq1()),
            c(rsa.iqmp()),
        ];
        change(&mut parts);
        let [n, e, d, p, q, dmp1, dmq1, iqmp] = parts;
        Rsa::from_private_components(n, e, d, p, q, dmp1, dmq1, iqmp)
            .unwrap()
            .private_key_to_der()
            .unwrap()
    }

    fn add(v: &mut BigNum, k: u32) {
        let mut sum = BigNum::new().unwrap();
        sum.checked_add(v, &BigNum::from_u32(k).unwrap()).unwrap();
        *v = sum;
    }

    /// The consistency check passes good keys and rejects every kind of disagreement between
    /// the components, without OpenSSL's primality tests.
    #[test]
    fn import_rejects_inconsistent_keys() {
        let v = vault();
        for bits in [1024, 2048] {
            let rsa = Rsa::generate(bits).unwrap();
            let good = tampered(&rsa, |_| {});
            assert_eq!(v.import(&PrivateKeyInput(good)).unwrap().bits, bits);
            let (n, e, d, p, q, dmp1, dmq1, iqmp) = (0, 1, 2, 3, 4, 5, 6, 7);
            type Change = Box<dyn FnOnce(&mut [BigNum; 8])>;
            let cases: Vec<(&str, Change)> = vec![
                ("d", Box::new(move |c| add(&mut c[d], 2))),
                ("p", Box::new(move |c| add(&mut c[p], 2))),
                ("q", Box::new(move |c| add(&mut c[q], 2))),
                ("n", Box::new(move |c| add(&mut c[n], 2))),
                ("iqmp", Box::new(move |c| add(&mut c[iqmp], 1))),
                ("dmp1", Box::new(move |c| add(&mut c[dmp1], 1))),
                ("dmq1", Box::new(move |c| add(&mut c[dmq1], 1))),
                ("e even", Box::new(move |c| add(&mut c[e], 1))),
                (
                    "e = 1",
                    Box::new(move |c| c[e] = BigNum::from_u32(1).unwrap()),
                ),
                // d and its CRT exponents agree, but d is not e's inverse.
                (
                    "d, dP, dQ",
                    Box::new(move |c| {
                        add(&mut c[d], 2);
                        let mut ctx = BigNumContext::new().unwrap();
                        for (prime, exp) in [(p, dmp1), (q, dmq1)] {
                            let mut m = BigNum::new().unwrap();
                            m.checked_sub(&c[prime], &BigNum::from_u32(1).unwrap())
                                .unwrap();
                            let mut r = BigNum::new().unwrap();
                            r.nnmod(&c[d], &m, &mut ctx).unwrap();
                            c[exp] = r;
                        }
                    }),
                ),
                // qInv + p is still q's inverse modulo p, but not the reduced one.
                (
                    "iqmp + p",
                    Box::new(move |c| {
                        let mut sum = BigNum::new().unwrap();
                        sum.checked_add(&c[iqmp], &c[p]).unwrap();
                        c[iqmp] = sum;
                    }),
                ),
            ];
            for (what, change) in cases {
                let der = tampered(&rsa, change);
                let Err(e) = v.import(&PrivateKeyInput(der)) else {
                    panic!("{bits}-bit key with a tampered {what} was accepted");
                };
                let why = reason(e);
                assert_eq!(why, KeyProblem::Inconsistent, "{what}");
            }
        }
    }

    /// Found by the key_import fuzzer: a valid three-prime key was refused as "inconsistent".
    #[test]
    fn a_three_prime_key_is_refused_for_what_it_is() {
        let der =
            include_bytes!("../../../fuzz/artifacts-found/key_import-three-prime-rsa1024.der");
        let why = reason(
            vault()
                .import(&PrivateKeyInput(der.to_vec()))
                .err()
                .unwrap(),
        );
        assert_eq!(why, KeyProblem::MultiPrime);
        let two = Rsa::generate(1024).unwrap();
        assert!(!multi_prime(&two));
    }

    #[test]
    fn a_key_without_its_factors_is_refused() {
        let rsa = Rsa::generate(1024).unwrap();
        let bare = openssl::rsa::RsaPrivateKeyBuilder::new(
            rsa.n().to_owned().unwrap(),
            rsa.e().to_owned().unwrap(),
            rsa.d().to_owned().unwrap(),
        )
        .unwrap()
        .build();
        let why = reason(check_consistent(&bare).err().unwrap());
        assert_eq!(why, KeyProblem::MissingFactors);
        // Zeros where the factors should be, as some encoders write them.
        let zeros = tampered(&rsa, |c| {
            for factor in &mut c[3..] {
                *factor = BigNum::new().unwrap();
            }
        });
        let why = reason(vault().import(&PrivateKeyInput(zeros)).err().unwrap());
        assert_eq!(why, KeyProblem::MissingFactors);
    }

    /// The vault's `sign`, given the golden key sealed and the golden time in milliseconds,
    /// makes the golden signature: the time reaches `t=` in seconds, and a second signature
    /// with the key now cached is the same.
    #[test]
    fn the_vault_signs_with_a_sealed_key_exactly_the_golden_signature() {
        use crate::dkim::golden::{GOLDEN, GOLDEN_MESSAGE, GOLDEN_TIME, golden_key};
        let vault = vault();
        let at = Timestamp(i64::try_from(GOLDEN_TIME).unwrap() * 1000 + 999);
        for (bits, expected) in GOLDEN {
            let der = golden_key(bits).private_key_to_pkcs8().unwrap();
            let sealed = vault.import(&PrivateKeyInput(der)).unwrap().sealed_private;
            for _ in 0..2 {
                let signed = vault
                    .sign(&sealed, GOLDEN_MESSAGE, "example.com", "golden", at)
                    .unwrap();
                let header = &signed[..signed.len() - GOLDEN_MESSAGE.len()];
                assert_eq!(String::from_utf8_lossy(header), expected, "{bits}-bit");
            }
        }
        let refused = vault.sign(b"not sealed", GOLDEN_MESSAGE, "example.com", "golden", at);
        assert!(matches!(refused, Err(Error::Internal(_))));
    }
}
