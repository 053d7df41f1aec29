//! `OpenSslVault`: the `KeyVault` over OpenSSL. Generates RSA-1024 and RSA-2048 DKIM keys,
//! validates and imports customers' keys, and seals every private key before it leaves.

use crate::random;
use crate::seal::Sealer;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use sesame_core::Error;
use sesame_core::model::{DkimToken, KeyLength};
use sesame_core::ports::{KeyVault, NewKey, PrivateKeyInput};

/// The associated-data label of sealed DKIM private keys.
pub const DKIM_KEY_PURPOSE: &str = "sesame/dkim-private-key/v1";

/// The vault; it holds the master key through its `Sealer`.
pub struct OpenSslVault {
    sealer: Sealer,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("crypto backend: {e}"))
}

impl OpenSslVault {
    /// A vault sealing under `sealer`'s master key.
    pub fn new(sealer: Sealer) -> OpenSslVault {
        OpenSslVault { sealer }
    }

    /// Unseals a DKIM private key (for signing, in the signing issue).
    pub fn open(&self, sealed: &[u8]) -> Result<PKey<Private>, Error> {
        let der = self
            .sealer
            .open(DKIM_KEY_PURPOSE, sealed)
            .map_err(internal)?;
        PKey::private_key_from_pkcs8(&der).map_err(internal)
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

impl KeyVault for OpenSslVault {
    fn generate(&self, length: KeyLength) -> Result<NewKey, Error> {
        let rsa = Rsa::generate(length.bits()).map_err(internal)?;
        let key = PKey::from_rsa(rsa).map_err(internal)?;
        self.seal(&key)
    }

    fn import(&self, input: &PrivateKeyInput) -> Result<NewKey, Error> {
        let field = "SigningAttributes.DomainSigningPrivateKey";
        // d2i_AutoPrivateKey accepts both PKCS#1 RSAPrivateKey and PKCS#8 PrivateKeyInfo DER.
        let key = PKey::private_key_from_der(&input.0).map_err(|_| {
            Error::bad_request(
                field,
                "the private key is not a DER-encoded PKCS#1 or PKCS#8 private key \
                 (give the base64 body only, without the BEGIN/END lines)",
            )
        })?;
        if key.id() != Id::RSA {
            return Err(Error::bad_request(
                field,
                "the private key is not an RSA key; DKIM keys for SES must be RSA",
            ));
        }
        let rsa = key.rsa().map_err(internal)?;
        let bits = rsa.size() * 8;
        if !(1024..=2048).contains(&bits) {
            return Err(Error::bad_request(
                field,
                format!("the RSA key has {bits} bits; it must have 1024 to 2048 bits"),
            ));
        }
        if !rsa.check_key().unwrap_or(false) {
            return Err(Error::bad_request(
                field,
                "the RSA private key is inconsistent",
            ));
        }
        self.seal(&key)
    }

    fn new_token(&self) -> Result<DkimToken, Error> {
        DkimToken::parse(&random::dkim_token().map_err(internal)?)
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

    fn reason(e: Error) -> String {
        match e {
            Error::BadRequest { reason, .. } => reason,
            other => panic!("expected BadRequest, got {other:?}"),
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
        assert!(garbage.contains("PKCS#1 or PKCS#8"), "{garbage}");
        let small = Rsa::generate(512).unwrap().private_key_to_der().unwrap();
        let small = reason(v.import(&PrivateKeyInput(small)).err().unwrap());
        assert!(small.contains("512 bits"), "{small}");
        let big = Rsa::generate(3072).unwrap().private_key_to_der().unwrap();
        assert!(reason(v.import(&PrivateKeyInput(big)).err().unwrap()).contains("3072"));
        let ec =
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        let ec = PKey::from_ec_key(ec)
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap();
        assert!(reason(v.import(&PrivateKeyInput(ec)).err().unwrap()).contains("not an RSA key"));
    }
}
