//! ListEmailIdentities page tokens continue only the listing they came from: another account
//! presenting one gets a BadRequestException, never the first account's identities.

use crate::harness::{Server, client_for};
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::ProvideErrorMetadata;

/// Runs a management command against `data_dir` and parses its JSON output.
fn cli(data_dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SESAME_MASTER_KEY")
        .env_remove("SESAME_DATA_DIR")
        .env_remove("SESAME_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sesame {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn names(c: &Client, token: Option<String>) -> (Vec<String>, Option<String>) {
    let page = c
        .list_email_identities()
        .page_size(1)
        .set_next_token(token)
        .send()
        .await
        .unwrap();
    let names = page
        .email_identities()
        .iter()
        .map(|i| i.identity_name().unwrap().to_owned())
        .collect();
    (names, page.next_token().map(str::to_owned))
}

#[tokio::test]
async fn a_page_token_is_bound_to_its_account() {
    let server = Server::start();
    let alice = server.client();
    let bob = cli(&server.data_dir, &["account", "create", "bob"]);
    let field = |f: &str| bob[f].as_str().unwrap().to_owned();
    let bob = client_for(server.api, &field("AccessKeyId"), &field("SecretAccessKey"));
    for (c, names) in [
        (
            &alice,
            ["a1@alice.example", "a2@alice.example", "a3@alice.example"],
        ),
        (&bob, ["b1@bob.example", "b2@bob.example", "b3@bob.example"]),
    ] {
        for n in names {
            c.create_email_identity()
                .email_identity(n)
                .send()
                .await
                .unwrap();
        }
    }
    let (first, token) = names(&alice, None).await;
    assert_eq!(first, ["a1@alice.example"]);
    let token = token.expect("a NextToken after one of three");

    // Bob presents Alice's token.
    let e = bob
        .list_email_identities()
        .page_size(1)
        .next_token(&token)
        .send()
        .await
        .unwrap_err();
    let e = e.into_service_error();
    assert!(e.is_bad_request_exception(), "{e:?}");
    assert_eq!(e.message(), Some("The NextToken is invalid."), "{e:?}");

    // The token itself is good: it continues Alice's listing, and Bob's own still works.
    let (second, _) = names(&alice, Some(token)).await;
    assert_eq!(second, ["a2@alice.example"]);
    let (bobs, bob_token) = names(&bob, None).await;
    assert_eq!(bobs, ["b1@bob.example"]);
    let (bobs, _) = names(&bob, bob_token).await;
    assert_eq!(bobs, ["b2@bob.example"]);
}
