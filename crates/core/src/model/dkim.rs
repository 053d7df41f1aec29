//! A domain's DKIM set-up: how it is configured (Easy DKIM or BYODKIM) and its keys, held as
//! slots whose states are explicit. The fields are private so every `DkimKeys` there is keeps
//! its invariants: at least one slot, exactly one signing, at most one staged. The DKIM status is
//! not here: a domain is verified exactly when its DKIM is, so the identity's verification
//! status is the one record of it.

use super::names::{DkimToken, Selector};
use super::time::Timestamp;
use std::fmt;

/// The model's `DkimSigningKeyLength`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyLength {
    /// `RSA_1024_BIT`
    Rsa1024,
    /// `RSA_2048_BIT`
    Rsa2048,
}

impl KeyLength {
    /// The modulus size in bits.
    pub fn bits(self) -> u32 {
        match self {
            KeyLength::Rsa1024 => 1024,
            KeyLength::Rsa2048 => 2048,
        }
    }

    /// The length for a modulus size, if SES supports it.
    pub fn from_bits(bits: u32) -> Option<KeyLength> {
        match bits {
            1024 => Some(KeyLength::Rsa1024),
            2048 => Some(KeyLength::Rsa2048),
            _ => None,
        }
    }
}

/// A DKIM key pair as the core sees it: public half in the clear, private half sealed by the
/// `KeyVault` (the core never holds plaintext private keys).
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// The selector the key is published under (token or BYODKIM selector).
    pub selector: Selector,
    /// The modulus size in bits (BYODKIM allows any size from 1024 to 2048).
    pub bits: u32,
    /// DER SubjectPublicKeyInfo, the value behind `p=` in the DKIM TXT record.
    pub public_der: Vec<u8>,
    /// The private key sealed by the vault; opaque to everyone else.
    pub sealed_private: Vec<u8>,
    /// When the pair was generated or imported (and, within a second, published).
    pub created_at: Timestamp,
}

impl DkimKey {
    /// Whether the key was revoked (`sesame revoke`): its material is gone, it never signs
    /// again, and the key zone answers its selector with an empty `p=` (RFC 6376 3.6.1).
    pub fn is_revoked(&self) -> bool {
        self.public_der.is_empty()
    }
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("bits", &self.bits)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What one key slot is doing. Every slot's key is published; the state says whether it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Signs mail now. Exactly one slot signs.
    Signing,
    /// Published and waiting to sign (Easy DKIM rotation). At most one slot is staged.
    Staged,
    /// Signed until this time; mail signed with it may still be in transit.
    Retired(Timestamp),
    /// Never signed (Easy DKIM's spare tokens); its key may be replaced at any time.
    Free,
}

/// The keys of a DKIM set-up: three for Easy DKIM (in token order), one for BYODKIM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKeys {
    slots: Vec<(DkimKey, SlotState)>,
}

impl DkimKeys {
    /// A fresh set: the first key signs, the others are free. `None` when `keys` is empty.
    pub fn new(keys: Vec<DkimKey>) -> Option<DkimKeys> {
        if keys.is_empty() {
            return None;
        }
        let slots = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    k,
                    if i == 0 {
                        SlotState::Signing
                    } else {
                        SlotState::Free
                    },
                )
            })
            .collect();
        Some(DkimKeys { slots })
    }

    /// Rebuilds a set from its stored form: each key with its retirement time, the signing
    /// slot and the staged one. `None` when the form breaks the invariants (a corrupt or
    /// half-written row): an index out of range, the staged slot the signing one, or a
    /// retirement time on the key that signs or waits to sign.
    pub fn from_stored(
        keys: Vec<(DkimKey, Option<Timestamp>)>,
        signing: usize,
        staged: Option<usize>,
    ) -> Option<DkimKeys> {
        if signing >= keys.len() || staged.is_some_and(|s| s == signing || s >= keys.len()) {
            return None;
        }
        let live = |i: usize| i == signing || Some(i) == staged;
        if keys
            .iter()
            .enumerate()
            .any(|(i, (_, retired))| live(i) && retired.is_some())
        {
            return None;
        }
        let slots = keys
            .into_iter()
            .enumerate()
            .map(|(i, (k, retired))| {
                let state = if i == signing {
                    SlotState::Signing
                } else if Some(i) == staged {
                    SlotState::Staged
                } else {
                    retired.map_or(SlotState::Free, SlotState::Retired)
                };
                (k, state)
            })
            .collect();
        Some(DkimKeys { slots })
    }

    /// Every slot in order: its key and its state.
    pub fn slots(&self) -> impl Iterator<Item = (&DkimKey, SlotState)> {
        self.slots.iter().map(|(k, s)| (k, *s))
    }

    /// Every key in slot order.
    pub fn keys(&self) -> impl Iterator<Item = &DkimKey> {
        self.slots.iter().map(|(k, _)| k)
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: a set has at least one slot (for clippy's `len` convention).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The state of slot `i` (`None` past the end).
    pub fn state(&self, i: usize) -> Option<SlotState> {
        self.slots.get(i).map(|(_, s)| *s)
    }

    /// The key of slot `i`.
    pub fn key(&self, i: usize) -> Option<&DkimKey> {
        self.slots.get(i).map(|(k, _)| k)
    }

    /// The index of the signing slot.
    pub fn signing_slot(&self) -> usize {
        self.slots
            .iter()
            .position(|(_, s)| *s == SlotState::Signing)
            .unwrap_or(0)
    }

    /// The key that signs now.
    pub fn signing(&self) -> &DkimKey {
        &self.slots[self.signing_slot()].0
    }

    /// The key that signs now, unless it was revoked: then nothing signs until a replacement
    /// is activated (or, for BYODKIM, uploaded).
    pub fn signing_key(&self) -> Option<&DkimKey> {
        Some(self.signing()).filter(|k| !k.is_revoked())
    }

    /// Revokes the key of slot `i`: its public and private halves are erased (a leaked key
    /// is not kept; an empty public half is the record of the revocation and what the key
    /// zone publishes), its state stays. Returns the slot's state, or `None` when there is no
    /// such slot or its key is already revoked.
    pub fn revoke(&mut self, i: usize) -> Option<SlotState> {
        let (key, state) = self.slots.get_mut(i)?;
        if key.is_revoked() {
            return None;
        }
        key.public_der = Vec::new();
        key.sealed_private = Vec::new();
        Some(*state)
    }

    /// The slot whose key is published under `selector`.
    pub fn slot_of(&self, selector: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|(k, _)| k.selector.as_str().eq_ignore_ascii_case(selector))
    }

    /// The staged slot and its key, if a rotation is in progress.
    pub fn staged(&self) -> Option<(usize, &DkimKey)> {
        self.slots
            .iter()
            .position(|(_, s)| *s == SlotState::Staged)
            .map(|i| (i, &self.slots[i].0))
    }

    /// When the keys now in use were generated (`LastKeyGenerationTimestamp`).
    pub fn last_generation(&self) -> Timestamp {
        self.keys()
            .map(|k| k.created_at)
            .max()
            .unwrap_or(Timestamp(0))
    }

    /// Puts `key` into slot `i` as the staged key. Only a free, retired or staged slot takes
    /// one (a staged key never signed, so replacing it breaks nothing); returns whether it did.
    pub fn stage(&mut self, i: usize, key: DkimKey) -> bool {
        match self.slots.get_mut(i) {
            Some(slot) if slot.1 != SlotState::Signing => {
                *slot = (key, SlotState::Staged);
                true
            }
            _ => false,
        }
    }

    /// The staged key starts signing at `now`; the key that signed is retired. Returns whether
    /// a key was staged.
    pub fn activate(&mut self, now: Timestamp) -> bool {
        let Some((staged, _)) = self.staged() else {
            return false;
        };
        let old = self.signing_slot();
        self.slots[old].1 = SlotState::Retired(now);
        self.slots[staged].1 = SlotState::Signing;
        true
    }
}

/// How an identity's DKIM is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimOrigin {
    /// Easy DKIM (`AWS_SES`): Sesame's keys behind three tokens.
    Easy {
        /// The three CNAME tokens, stable across key-length changes.
        tokens: Vec<DkimToken>,
        /// `NextSigningKeyLength` and when it last changed (for the once-a-day rule).
        lengths: KeyLengthHistory,
    },
    /// Bring Your Own DKIM (`EXTERNAL`).
    External {
        /// The customer's selector.
        selector: Selector,
    },
}

/// What the once-a-day key-length rule needs to know about an Easy DKIM identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLengthHistory {
    /// The length configured now (`NextSigningKeyLength`).
    pub next_length: KeyLength,
    /// The last change of the length, if any.
    pub changed_at: Option<Timestamp>,
    /// The last change down to 1024 bits, if any.
    pub downgraded_at: Option<Timestamp>,
}

/// One revocation of a key (`sesame revoke`), kept for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The selector (token) whose key was revoked.
    pub selector: Selector,
    /// When.
    pub at: Timestamp,
    /// Who asked (the operator's name as the CLI was given or found it).
    pub by: String,
}

/// The DKIM part of a domain identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dkim {
    /// Whether mail from the identity is signed.
    pub signing_enabled: bool,
    /// Easy DKIM or BYODKIM.
    pub origin: DkimOrigin,
    /// The keys and what each is doing.
    pub keys: DkimKeys,
    /// Every revocation of one of this set-up's keys, oldest first.
    pub revocations: Vec<Revocation>,
}

impl Dkim {
    /// The length of the key now in use (`CurrentSigningKeyLength`).
    pub fn current_length(&self) -> Option<KeyLength> {
        KeyLength::from_bits(self.keys.signing().bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> DkimKey {
        DkimKey {
            selector: Selector::parse(&format!("s{n}")).unwrap(),
            bits: 2048,
            public_der: vec![n],
            sealed_private: vec![n],
            created_at: Timestamp(i64::from(n)),
        }
    }

    #[test]
    fn slots_keep_one_signer_and_at_most_one_staged() {
        assert!(DkimKeys::new(vec![]).is_none());
        let mut keys = DkimKeys::new(vec![key(0), key(1), key(2)]).unwrap();
        assert_eq!(keys.signing_slot(), 0);
        assert_eq!(keys.state(1), Some(SlotState::Free));
        assert!(
            !keys.stage(0, key(9)),
            "the signing slot takes no staged key"
        );
        assert!(keys.stage(2, key(3)));
        assert_eq!(keys.staged().map(|(i, _)| i), Some(2));
        assert!(keys.activate(Timestamp(50)));
        assert_eq!(keys.signing_slot(), 2);
        assert_eq!(keys.signing().public_der, vec![3]);
        assert_eq!(keys.state(0), Some(SlotState::Retired(Timestamp(50))));
        assert!(keys.staged().is_none());
        assert!(
            !keys.activate(Timestamp(60)),
            "nothing staged, nothing to activate"
        );
    }

    #[test]
    fn a_revoked_key_loses_its_material_and_never_signs() {
        let mut keys = DkimKeys::new(vec![key(1), key(2), key(3)]).unwrap();
        assert_eq!(keys.slot_of("S2"), Some(1));
        assert_eq!(keys.revoke(0), Some(SlotState::Signing));
        assert!(keys.signing().is_revoked());
        assert!(keys.signing_key().is_none(), "a revoked key signs nothing");
        assert!(keys.signing().sealed_private.is_empty());
        assert_eq!(keys.revoke(0), None, "revoked once");
        assert_eq!(keys.revoke(7), None);
        assert!(keys.stage(1, key(9)));
        assert!(keys.activate(Timestamp(80)));
        assert_eq!(keys.signing_key().map(|k| k.bits), Some(2048));
        assert_eq!(keys.state(0), Some(SlotState::Retired(Timestamp(80))));
        assert!(
            keys.key(0).unwrap().is_revoked(),
            "still published as revoked"
        );
    }

    #[test]
    fn stored_form_round_trips_and_corrupt_indexes_are_refused() {
        let stored = vec![(key(0), Some(Timestamp(7))), (key(1), None), (key(2), None)];
        let keys = DkimKeys::from_stored(stored.clone(), 1, Some(2)).unwrap();
        let states: Vec<SlotState> = keys.slots().map(|(_, s)| s).collect();
        assert_eq!(
            states,
            vec![
                SlotState::Retired(Timestamp(7)),
                SlotState::Signing,
                SlotState::Staged
            ]
        );
        assert!(DkimKeys::from_stored(stored.clone(), 3, None).is_none());
        assert!(DkimKeys::from_stored(stored.clone(), 1, Some(1)).is_none());
        assert!(DkimKeys::from_stored(stored.clone(), 1, Some(5)).is_none());
        assert!(
            DkimKeys::from_stored(stored.clone(), 0, None).is_none(),
            "a retired key cannot be the one that signs"
        );
        assert!(
            DkimKeys::from_stored(stored, 1, Some(0)).is_none(),
            "nor the one that waits to sign"
        );
    }
}
