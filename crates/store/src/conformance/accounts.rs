//! Accounts and access keys.

use super::account;
use sesame_core::StoreError;
use sesame_core::model::{AccountId, Timestamp};
use sesame_core::ports::{AccessKey, Account, Store};

pub(super) fn accounts_and_keys(store: &dyn Store) {
    let a = account(store, "100000000001", "alpha");
    let dup = Account {
        id: AccountId::parse("100000000002").unwrap(),
        name: "alpha".into(),
        created_at: Timestamp(1),
    };
    assert!(matches!(
        store.insert_account(&dup),
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(store.account_by_name("alpha").unwrap().unwrap().id, a);
    assert!(store.account_by_name("nobody").unwrap().is_none());
    let mut key = AccessKey {
        id: "AKIAEXAMPLE".into(),
        account: a.clone(),
        sealed_secret: vec![1, 2, 3],
        enabled: true,
        created_at: Timestamp(3),
    };
    store.put_access_key(&key).unwrap();
    assert_eq!(store.access_key("AKIAEXAMPLE").unwrap().unwrap(), key);
    key.enabled = false;
    store.put_access_key(&key).unwrap();
    assert!(!store.access_key("AKIAEXAMPLE").unwrap().unwrap().enabled);
    assert_eq!(store.access_keys_of(&a).unwrap(), vec![key]);
    assert!(store.access_key("AKIANONE").unwrap().is_none());
    assert!(
        store
            .list_accounts()
            .unwrap()
            .iter()
            .any(|x| x.name == "alpha")
    );
}
