//! Custom verification email templates: round trip, uniqueness and quota per account, update
//! keeping tags, delete, paging, tenancy.

use super::account;
use sesame_core::StoreError;
use sesame_core::model::{
    EmailAddress, RedirectUrl, Tag, TemplateContent, TemplateName, Timestamp, VerificationTemplate,
};
use sesame_core::ports::Store;

fn template(
    account: &sesame_core::model::AccountId,
    name: &str,
    subject: &str,
) -> VerificationTemplate {
    VerificationTemplate {
        account: account.clone(),
        name: TemplateName::parse(name).unwrap(),
        content: TemplateContent::new(
            EmailAddress::parse("Verify@Example.com").unwrap(),
            subject,
            "<p>Ünïcode, \"quotes\" and a\r\nnewline</p>",
            RedirectUrl::parse("https://app.example.com/ok?x=1").unwrap(),
            RedirectUrl::parse("http://app.example.com/no").unwrap(),
        )
        .unwrap(),
        tags: vec![Tag::parse("team", "growth").unwrap()],
        created_at: Timestamp(5_000),
    }
}

pub(super) fn templates_round_trip_with_quota_paging_and_tenancy(store: &(dyn Store + 'static)) {
    let a = account(store, "800000000011", "templates-a");
    let b = account(store, "800000000012", "templates-b");
    let t = template(&a, "welcome", "Confirm your address");
    store.insert_template(&t, 3).unwrap();
    assert_eq!(store.get_template(&a, &t.name).unwrap(), Some(t.clone()));
    assert_eq!(
        store.get_template(&b, &t.name).unwrap(),
        None,
        "per account"
    );
    assert!(matches!(
        store.insert_template(&t, 3),
        Err(StoreError::AlreadyExists)
    ));
    // The same name in another account is another template.
    store
        .insert_template(&template(&b, "welcome", "B"), 3)
        .unwrap();
    store
        .insert_template(&template(&a, "b-second", "2"), 3)
        .unwrap();
    store
        .insert_template(&template(&a, "a-first", "1"), 3)
        .unwrap();
    assert!(matches!(
        store.insert_template(&template(&a, "z-fourth", "4"), 3),
        Err(StoreError::LimitExceeded)
    ));
    assert_eq!(
        store
            .get_template(&a, &TemplateName::parse("z-fourth").unwrap())
            .unwrap(),
        None
    );

    // Update replaces the content; tags and creation time stay.
    let mut changed = template(&a, "welcome", "New subject");
    changed.tags = vec![];
    changed.created_at = Timestamp(9);
    store.update_template(&changed).unwrap();
    let got = store.get_template(&a, &t.name).unwrap().unwrap();
    assert_eq!(got.content.subject, "New subject");
    assert_eq!((got.tags, got.created_at), (t.tags.clone(), t.created_at));
    assert!(matches!(
        store.update_template(&template(&a, "nobody", "x")),
        Err(StoreError::NotFound)
    ));

    // Paging by name, in byte order, one account only.
    let names = |after: Option<&str>, limit| -> Vec<String> {
        store
            .list_templates(&a, after, limit)
            .unwrap()
            .into_iter()
            .map(|t| t.name.as_str().to_owned())
            .collect()
    };
    assert_eq!(names(None, 10), ["a-first", "b-second", "welcome"]);
    assert_eq!(names(None, 2), ["a-first", "b-second"]);
    assert_eq!(names(Some("b-second"), 2), ["welcome"]);
    assert!(names(Some("welcome"), 2).is_empty());

    store.delete_template(&a, &t.name).unwrap();
    assert!(matches!(
        store.delete_template(&a, &t.name),
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.get_template(&a, &t.name).unwrap(), None);
    assert!(
        store.get_template(&b, &t.name).unwrap().is_some(),
        "b's stays"
    );
    // Room again under the quota.
    store
        .insert_template(&template(&a, "z-fourth", "4"), 3)
        .unwrap();
    for n in ["a-first", "b-second", "z-fourth"] {
        store
            .delete_template(&a, &TemplateName::parse(n).unwrap())
            .unwrap();
    }
    store.delete_template(&b, &t.name).unwrap();
}
